"""The shipped diabetes.csv is exactly what scikit-learn's bundled data gives."""

from greenlight.data import default_dataset_csv, diabetes_csv_from_sklearn


def test_shipped_csv_equals_scikit_learns_diabetes_data():
    shipped = default_dataset_csv()
    assert shipped == diabetes_csv_from_sklearn()
    lines = shipped.decode().splitlines()
    assert lines[0] == "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,target" and len(lines) == 443
