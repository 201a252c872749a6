"""Conan 2 recipe for ember.

    conan create . -pr:a <profile>            # the library and test_package/
    conan create . -o "&:with_torch=False"    # without LibTorch (linear, cache, default stages)

The dependencies are ordinary requirements, so a remote with them (ConanCenter) works as
is. On a machine that has them already (Debian's -dev packages), a profile lists them
under [platform_requires] and Conan builds nothing else: scripts/conan writes such a
profile. LibTorch is the torch wheel's (torch.utils.cmake_prefix_path, found through the
Python running Conan), or the directory named by `-c user.ember:torch_dir=...` or by the
Torch_DIR environment variable; see docs/conan.md.
"""
import os
import re
import subprocess
import sys

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load


class EmberConan(ConanFile):
    name = "ember"
    description = "Embeddable C++ library for ML inference and model lifecycle"
    license = "Apache-2.0"
    topics = ("machine-learning", "inference", "pytorch", "torchscript", "model-registry")
    package_type = "library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "shared": [True, False],
        "fPIC": [True, False],
        "with_torch": [True, False],
        "with_registry": [True, False],
    }
    default_options = {"shared": True, "fPIC": True, "with_torch": True, "with_registry": True}
    exports_sources = "CMakeLists.txt", "LICENSE", "cmake/*", "include/*", "src/*"

    def set_version(self):
        text = load(self, os.path.join(self.recipe_folder, "CMakeLists.txt"))
        self.version = re.search(r"project\(ember\s+VERSION\s+([0-9.]+)", text).group(1)

    def config_options(self):
        if self.settings.os == "Windows":
            del self.options.fPIC

    def configure(self):
        if self.options.shared:
            self.options.rm_safe("fPIC")

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        # All private to libember: its public headers include none of them.
        self.requires("simdjson/[>=3.0 <5]")
        self.requires("nlohmann_json/[>=3.11 <4]")
        self.requires("eigen/[>=3.4 <6]")
        self.requires("re2/[>=20220601]")
        self.requires("openssl/[>=3.0 <4]")  # bundles: SHA-256 checksums, signatures, encryption
        if self.options.with_registry:
            self.requires("sqlite3/[>=3.40 <4]")
        if self.options.with_torch:
            self.requires("libtorch/[>=2.9 <3]")

    def validate(self):
        check_min_cppstd(self, 20)
        if self.options.with_torch and not self._libtorch_from_conan() and self._torch_dir() is None:
            raise ConanInvalidConfiguration(
                "with_torch=True needs LibTorch: install torch into the Python that runs Conan, or pass "
                "-c user.ember:torch_dir=<dir with TorchConfig.cmake>, or build with -o '&:with_torch=False'")

    def package_id(self):
        # A package built against one LibTorch does not run against another: the variant
        # (version, C++ ABI, CPU or CUDA) is part of the package id.
        if self.info.options.with_torch and self._torch_dir() is not None:
            self.info.options.with_torch = self._torch_variant()

    def generate(self):
        tc = CMakeToolchain(self)
        tc.cache_variables["BUILD_SHARED_LIBS"] = bool(self.options.shared)
        tc.cache_variables["EMBER_WITH_TORCH"] = bool(self.options.with_torch)
        tc.cache_variables["EMBER_WITH_REGISTRY"] = bool(self.options.with_registry)
        for part in ("TESTS", "BENCH", "EXAMPLES", "CLI", "PYTHON", "FUZZERS"):
            tc.cache_variables[f"EMBER_BUILD_{part}"] = False
        if self.options.with_torch and (self.conf.get("user.ember:torch_dir") or not self._libtorch_from_conan()):
            tc.cache_variables["Torch_DIR"] = self._torch_dir()
        tc.generate()
        CMakeDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        CMake(self).install()

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "ember")
        self.cpp_info.set_property("cmake_target_name", "ember::ember")
        lib = self.cpp_info.components["ember"]
        lib.set_property("cmake_target_name", "ember::ember")
        lib.libs = ["ember"]
        if not self.options.shared:
            # A static libember needs its dependencies at the consumer's link; a shared one
            # hides them (no symbol, header or flag of theirs reaches the consumer).
            lib.defines = ["EMBER_STATIC"]
            if self.settings.os in ("Linux", "FreeBSD"):
                lib.system_libs = ["pthread", "dl", "m"]
            lib.requires = ["simdjson::simdjson", "nlohmann_json::nlohmann_json", "eigen::eigen", "re2::re2",
                            "openssl::crypto"]
            if self.options.with_registry:
                lib.requires.append("sqlite3::sqlite3")
            if self.options.with_torch:
                lib.requires.append("libtorch::libtorch")
        if self.options.shared and self.options.with_torch and not self._libtorch_from_conan():
            # libember.so finds LibTorch through its RUNPATH; consumers' runtimes see it too.
            self.runenv_info.append_path("LD_LIBRARY_PATH", self._torch_lib_dir())

    # --- LibTorch -----------------------------------------------------------------------
    def _libtorch_from_conan(self):
        """True when libtorch is a package in Conan's cache (ConanCenter's), False when it
        is the machine's ([platform_requires]: no package folder)."""
        if not self.options.with_torch:
            return False
        try:
            return self.dependencies["libtorch"].package_folder is not None
        except KeyError:
            return False

    def _torch_dir(self):
        """The directory holding TorchConfig.cmake, or None."""
        if not hasattr(self, "_found_torch_dir"):
            self._found_torch_dir = self._find_torch_dir()
        return self._found_torch_dir

    def _find_torch_dir(self):
        candidates = [self.conf.get("user.ember:torch_dir"), os.environ.get("Torch_DIR")]
        python = self.conf.get("user.ember:python", default=sys.executable)
        try:
            prefix = subprocess.run([python, "-c", "import torch.utils; print(torch.utils.cmake_prefix_path)"],
                                    capture_output=True, text=True, timeout=120, check=True).stdout.strip()
            candidates.append(os.path.join(prefix, "Torch"))
        except (OSError, subprocess.SubprocessError):
            pass
        for path in candidates:
            if path and os.path.isfile(os.path.join(path, "TorchConfig.cmake")):
                return os.path.abspath(path)
        return None

    def _torch_lib_dir(self):
        """LibTorch's lib/ (TorchConfig.cmake is in <root>/share/cmake/Torch)."""
        return os.path.normpath(os.path.join(self._torch_dir() or "", "..", "..", "..", "lib"))

    def _torch_variant(self):
        """'2.13.0-cxx11-cpu': LibTorch's version, its C++ ABI and whether it has CUDA."""
        torch_dir = self._torch_dir()
        if torch_dir is None:
            return "unknown"
        version_file = os.path.join(torch_dir, "TorchConfigVersion.cmake")
        match = re.search(r'PACKAGE_VERSION "([^"]+)"', load(self, version_file)) if os.path.isfile(version_file) else None
        lib_dir = self._torch_lib_dir()
        abi = "unknown-abi"
        c10 = os.path.join(lib_dir, "libc10.so")
        if os.path.isfile(c10):
            with open(c10, "rb") as f:
                abi = "cxx11" if b"St7__cxx11" in f.read() else "pre-cxx11"
        elif os.path.isfile(os.path.join(lib_dir, "c10.dll")):
            abi = "msvc"
        cuda = any(os.path.exists(os.path.join(lib_dir, name)) for name in ("libc10_cuda.so", "c10_cuda.dll"))
        return f"{match.group(1) if match else 'unknown'}-{abi}-{'cuda' if cuda else 'cpu'}"
