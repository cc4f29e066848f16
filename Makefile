# make demo : the whole local workflow on a built-in SYNTHETIC sample, ending with deploy.workflow run twice
#             (the first model is pushed, a deliberately weak second one is not)
# make test : the test suite (what CI runs)
# Both create or update .venv by themselves (Python 3.11, pinned stack, ~3 GB).

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO ?= demo
DEMO_ROWS ?= 20000
DEMO_EPOCHS ?= 3
PYTEST_ARGS ?=
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: venv demo test bench clean

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,deploy]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m pipelines.sample --rows $(DEMO_ROWS) --output $(DEMO)/data/synthetic_reviews.csv
	$(BIN)/python -m pipelines.preprocess --input $(DEMO)/data/synthetic_reviews.csv --output $(DEMO)/prep --overwrite
	$(BIN)/python -m trainer.task --data $(DEMO)/prep --job-dir $(DEMO)/jobs/lstm1 --model lstm1 \
		--epochs $(DEMO_EPOCHS) --batch-size 128 --raw-input $(DEMO)/data/synthetic_reviews.csv --overwrite
	$(BIN)/python -m trainer.predict --model $$(ls -d $(DEMO)/jobs/lstm1/export/* | tail -n 1) \
		"This coffee is delicious and fresh, I will buy again. Highly recommend!" \
		"Terrible. It tasted stale and bland, a waste of money. Never again." \
		"The box was smaller than expected but my dog loves it."
	$(BIN)/python -m trainer.task --data $(DEMO)/prep --job-dir $(DEMO)/jobs/tfidf --model tfidf \
		--raw-input $(DEMO)/data/synthetic_reviews.csv --overwrite
	$(BIN)/python -m trainer.compare $(DEMO)/jobs/lstm1 $(DEMO)/jobs/tfidf
	$(BIN)/python -m pipelines.sample --rows 2000 --reviews-seed 8 --output $(DEMO)/data/new_reviews.csv
	$(BIN)/python -m pipelines.score --model $$(ls -d $(DEMO)/jobs/lstm1/export/* | tail -n 1) \
		--input $(DEMO)/data/new_reviews.csv --output $(DEMO)/scores/scores
	rm -rf $(DEMO)/workflow
	$(BIN)/python -m deploy.workflow run --input $(DEMO)/data/synthetic_reviews.csv --work-dir $(DEMO)/workflow \
		--run-id first --model tfidf --epochs 5
	$(BIN)/python -m deploy.workflow run --input $(DEMO)/data/synthetic_reviews.csv --work-dir $(DEMO)/workflow \
		--run-id weak --model tfidf --epochs 5 --learning-rate 0.000001
	@echo "demo artifacts: data $(DEMO)/data/  preprocessed $(DEMO)/prep/ (report.json, rejected/)"
	@echo "               jobs $(DEMO)/jobs/{lstm1,tfidf}/ (metrics.json, history.json, loss.png, evaluation/report.html, logs/, export/)"
	@echo "               scores $(DEMO)/scores/ (scores-*.csv, scores-rejected-*.jsonl, scores-drift.json)"
	@echo "               workflow $(DEMO)/workflow/ (runs/{first,weak}/ with lineage.json and blessing.json; serving/1/: the one pushed)"

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/preprocess.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/serve.py
	$(BIN)/python benchmarks/serve_http.py

clean:
	rm -rf $(DEMO) .pytest_cache build *.egg-info
