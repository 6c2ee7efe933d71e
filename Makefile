# xvol: `make reproduce` (the main job) and `make test`, each from nothing on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: reproduce test lint typecheck pytest paper tex clean

# Create the virtual environment and install the kit with every extra, once per pyproject change.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,notebooks,bench,dask]'
	@touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/xvol reproduce

test: lint typecheck pytest

# The paper: LaTeX from Debian's TeX Live (installed when latexmk is missing), numbers and figures
# from `xvol reproduce` (run first when they are missing).
TEX_PACKAGES := latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)

paper: $(STAMP)
	@command -v latexmk >/dev/null || $(MAKE) tex
	@test -f paper/generated/numbers.tex || $(BIN)/xvol reproduce --no-pdf
	cd paper && latexmk -pdf -interaction=nonstopmode -halt-on-error xvol.tex

tex:
	$(SUDO) apt-get update
	$(SUDO) apt-get install -y --no-install-recommends $(TEX_PACKAGES)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow setuptools' package-dir mapping, so it checks a tree of symlinks that
# lays the mapped folders out as the installed `xvol` package.
typecheck: $(STAMP)
	@rm -rf .typecheck && mkdir -p .typecheck/xvol
	@for f in src/xvol/*; do ln -s ../../$$f .typecheck/xvol/; done
	@for d in reference model verification experiments; do ln -s ../../$$d .typecheck/xvol/$$d; done
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest

clean:
	cd paper && latexmk -C xvol.tex 2>/dev/null || true
	rm -rf $(VENV) .typecheck .mypy_cache .ruff_cache .pytest_cache build *.egg-info
