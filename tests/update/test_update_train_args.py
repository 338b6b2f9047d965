"""How long an update trains (``update.step_share``, chosen by measurement: RESULTS "A growing knowledge base"):
the full run's length scaled, whichever of max_steps or epochs the config uses; the user's own numbers win."""
from kit.update.options import STEP_SHARE, UpdateOptions
from kit.update.stage import update_train_args

V1 = {"learning_rate": 1e-5, "max_steps": 120, "warmup_steps": 10, "per_device_train_batch_size": 8}


def test_the_default_trains_the_measured_share_of_the_full_runs_steps():
    assert STEP_SHARE == 0.5
    out = update_train_args(V1, UpdateOptions())
    assert out == {**V1, "max_steps": 60}          # the arm measured at 0.33x the re-run's wall time
    assert V1["max_steps"] == 120                    # the config's own args are not changed in place


def test_epochs_scale_when_the_config_counts_epochs():
    assert update_train_args({"num_train_epochs": 2}, UpdateOptions(step_share=0.25))["num_train_epochs"] == 0.5
    assert update_train_args({}, UpdateOptions())["num_train_epochs"] == 1.5       # HF's default of 3, halved


def test_the_users_numbers_win_and_share_one_keeps_the_full_length():
    assert update_train_args(V1, UpdateOptions(train_args={"max_steps": 90}))["max_steps"] == 90
    assert update_train_args(V1, UpdateOptions(train_args={"num_train_epochs": 1}))["max_steps"] == 120
    assert update_train_args(V1, UpdateOptions(step_share=1.0)) == V1
    assert update_train_args({"max_steps": 1}, UpdateOptions())["max_steps"] == 1   # never 0 steps
