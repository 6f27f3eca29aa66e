"""Code that runs inside the SageMaker scikit-learn containers and the inference Lambda image.

These are plain scripts (SageMaker runs them by path), so they import each other by bare
module name from their own directory and depend only on numpy, pandas, scikit-learn and
joblib. This file exists so that `pip install` ships them; nothing imports `src` as a package
on the serving path.
"""
