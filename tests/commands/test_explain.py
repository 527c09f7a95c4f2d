"""`kerakit explain`: permutation importance from the shell."""

import pytest

from kerakit import cli


@pytest.mark.parametrize("flag", ["--top", "--repeats"])
def test_counts_must_be_positive(tmp_path, capsys, flag):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["explain", str(tmp_path), "--csv", "rows.csv", flag, "-1"])
    assert exit_.value.code == 2
    assert f"argument {flag}: must be a whole number of at least 1" in capsys.readouterr().err


def test_help_names_the_default_metric_each_task_uses(capsys):
    from kerakit.analysis.metrics import get_metric
    from kerakit.spec import ProblemSpec

    with pytest.raises(SystemExit):
        cli.main(["explain", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for spec in (ProblemSpec(task="regression"), ProblemSpec(task="binary"),
                 ProblemSpec(task="multiclass", num_classes=3)):
        name, _ = get_metric("auto", spec)  # what explain uses when --metric is left out
        assert f"{name} for {spec.task}" in help_text


def test_a_csv_without_the_label_column_is_refused_before_tensorflow(manifest_run, cli_in_subprocess, tmp_path):
    run_dir = manifest_run()
    (tmp_path / "rows.csv").write_text("mass,height\n1,2\n")
    code, tensorflow, message = cli_in_subprocess(["explain", run_dir, "--csv", "rows.csv"])
    assert (code, tensorflow) == (1, False)
    assert "no label column 'species'" in message
