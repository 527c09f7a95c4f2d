"""`kerakit compare`: refusals of a wrong CSV before any model loads (the A/B tests themselves are in
tests/analysis/test_analysis.py)."""


def test_a_csv_without_the_label_column_is_refused_before_tensorflow(manifest_run, cli_in_subprocess, tmp_path):
    a, b = manifest_run("abcd"), manifest_run("abce")
    (tmp_path / "rows.csv").write_text("mass,height,specis\n1,2,a\n")
    code, tensorflow, message = cli_in_subprocess(["compare", a, b, "--csv", "rows.csv"])
    assert (code, tensorflow) == (1, False)
    assert "no label column 'species'. Did you mean 'specis'?" in message


def test_a_csv_without_model_bs_feature_columns_is_refused_before_tensorflow(
        manifest_run, cli_in_subprocess, tmp_path):
    a = manifest_run("abcd", feature_names=("mass", "height"))
    b = manifest_run("abce", feature_names=("mass", "height", "width"))
    (tmp_path / "rows.csv").write_text("mass,height,species\n1,2,a\n")
    code, tensorflow, message = cli_in_subprocess(["compare", a, b, "--csv", "rows.csv"])
    assert (code, tensorflow) == (1, False)
    assert "lacks 1 of the run's 3 feature column(s): width." in message
