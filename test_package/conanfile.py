"""conan create's check of the package: a consumer built against it alone loads the
tiny model make_model.py writes and predicts (TorchScript when the package has LibTorch
and the Python running Conan has torch to write it, the logistic regression otherwise)."""
import os
import sys

from conan import ConanFile
from conan.tools.build import can_run
from conan.tools.cmake import CMake, cmake_layout


class EmberTestConan(ConanFile):
    settings = "os", "arch", "compiler", "build_type"
    generators = "CMakeDeps", "CMakeToolchain", "VirtualRunEnv"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        cmake_layout(self)

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def test(self):
        if can_run(self):
            program = os.path.join(self.cpp.build.bindir, "test_package")
            model = os.path.join(self.build_folder, "model")
            script = os.path.join(self.source_folder, "make_model.py")
            self.run(f'"{sys.executable}" "{script}" "{model}"')
            self.run(f'"{program}" "{model}"', env="conanrun")
