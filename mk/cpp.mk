# The C++ consumer library (docs/cpp.md). `make cpp` configures jetson/cpp, builds what this machine can
# (the TensorRT runtime only where CMake finds NvInfer.h + CUDA: the JetPack container) and runs CTest.
CPP_BUILD ?= jetson/build
CMAKE ?= cmake
CTEST ?= ctest
CPP_CMAKE_ARGS ?=

.PHONY: cpp cpp-deps cpp-clean

cpp:
	$(CMAKE) -S jetson/cpp -B $(CPP_BUILD) -DCMAKE_BUILD_TYPE=Release $(CPP_CMAKE_ARGS)
	$(CMAKE) --build $(CPP_BUILD) -j $$(nproc)
	$(CTEST) --test-dir $(CPP_BUILD) --output-on-failure

# Debian / Ubuntu / JetPack packages the build needs (run as root).
cpp-deps:
	apt-get install -y --no-install-recommends cmake g++ make nlohmann-json3-dev libstb-dev \
	  || { apt-get update -qq && apt-get install -y --no-install-recommends cmake g++ make nlohmann-json3-dev libstb-dev; }

cpp-clean:
	rm -rf $(CPP_BUILD)
