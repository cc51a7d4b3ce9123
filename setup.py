"""Distribution of the hybrid 2D-turbulence package (solvers, closures, hybrid)."""
from setuptools import find_packages, setup

setup(
    name="hybrid-turbulence",
    version="0.1.0",
    description="Solver-coupled hybrid simulation of 2D turbulence: pseudo-spectral DNS/LES "
    "with a closure hook for classical and learned stochastic subgrid models.",
    python_requires=">=3.11",                    # tomllib; the pins in constraints.txt
    license="MIT",
    license_files=["LICENSE"],
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    classifiers=[
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.11",
    ],
    packages=find_packages(include=["solvers*", "closures*", "hybrid*"]),
    package_data={"hybrid": ["presets/*.toml"], "closures": ["weights/*.pt", "weights/*.json"]},
    install_requires=[
        "numpy>=1.24",
        "pyfftw>=0.13",
        "numba>=0.59",
        "netCDF4>=1.6",
        "xarray>=2023.1",
        "tqdm>=4.60",
        "matplotlib>=3.6",
        "torch==2.13.0",
        "dask[distributed]>=2023.1",
    ],
    extras_require={"test": ["pytest>=7", "pytest-benchmark>=4"]},
    entry_points={"console_scripts": ["hybrid=hybrid.cli:main"]},
)
