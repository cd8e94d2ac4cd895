"""The feature selectors: they find the columns that matter (and a data-blind selector would
not), they are real scikit-learn estimators, and bad parameters say what is valid."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import check_estimator
from sparse_rl.supervised import QuickSelection, SparseFeatureSelector

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import ConfigError

DOCS = Path(__file__).resolve().parent.parent / "docs" / "supervised.md"
#: Small networks and short runs: each fit takes a fraction of a second on one core.
FAST = {"hidden": (64,), "density": 0.3, "epochs": 15, "batch_size": 32, "lr": 1e-2}


def _informative_first() -> tuple[np.ndarray, np.ndarray]:
    """5 informative columns of 30, first (``shuffle=False``)."""
    return make_classification(
        n_samples=240,
        n_features=30,
        n_informative=5,
        n_redundant=0,
        class_sep=1.5,
        shuffle=False,
        random_state=0,
    )


def _xor(n: int = 300, d: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The label is the XOR of the signs of columns 0 and 1: neither alone says anything."""
    X = np.random.default_rng(seed).standard_normal((n, d))
    return X, ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(int)


def _random_scores(model, X, y) -> np.ndarray:
    """A selector that ignores the data."""
    return np.random.default_rng(0).random(X.shape[1])


@pytest.mark.parametrize("importance", ["attribution", "strength"])
def test_top_k_covers_the_informative_columns(importance: str) -> None:
    X, y = _informative_first()
    selector = SparseFeatureSelector(5, importance=importance, random_state=0, **FAST).fit(X, y)
    assert selector.get_support()[:5].mean() >= 0.8
    blind = SparseFeatureSelector(5, importance=_random_scores, random_state=0, **FAST).fit(X, y)
    assert blind.get_support()[:5].mean() <= 0.4, "the test must fail a data-blind selector"


@pytest.mark.parametrize("updater", ["set", "rigl", "static"])
def test_attribution_finds_xor_where_anova_cannot(updater: str) -> None:
    X, y = _xor()
    fast = {**FAST, "hidden": (32,), "density": 0.5, "epochs": 20}
    selector = SparseFeatureSelector(2, updater=updater, random_state=0, **fast).fit(X, y)
    assert set(selector.get_support(indices=True)) == {0, 1}
    assert list(selector.ranking_[:2]) in ([1, 2], [2, 1])
    anova = SelectKBest(f_classif, k=2).fit(X, y)
    assert set(anova.get_support(indices=True)) != {0, 1}


def test_same_random_state_same_scores_and_masks() -> None:
    X, y = _xor(120)
    a = SparseFeatureSelector(3, random_state=7, **FAST).fit(X, y)
    b = SparseFeatureSelector(3, random_state=7, **FAST).fit(X, y)
    np.testing.assert_array_equal(a.feature_importances_, b.feature_importances_)
    np.testing.assert_array_equal(a.importance_history_, b.importance_history_)
    assert torch.equal(a.model_[0].weight_mask, b.model_[0].weight_mask)
    c = SparseFeatureSelector(3, random_state=8, **FAST).fit(X, y)
    assert not np.array_equal(a.feature_importances_, c.feature_importances_)


def test_fitted_attributes_tell_one_story() -> None:
    X, y = _xor(120)
    selector = SparseFeatureSelector(3, random_state=0, **FAST).fit(X, y)
    history = selector.importance_history_
    assert history.shape == (len(selector.history_), 10)
    assert np.all(np.diff(history, axis=0) >= 0), "attribution accumulates over training"
    best = selector.history_.best_epoch
    np.testing.assert_array_equal(selector.feature_importances_, history[best])
    assert sorted(selector.ranking_) == list(range(1, 11))
    top = np.argsort(-selector.feature_importances_, kind="stable")[:3]
    assert set(selector.get_support(indices=True)) == set(top)
    assert selector.n_features_in_ == 10
    stats = selector.sparsity_stats_
    assert stats is not None and stats.density == pytest.approx(0.3, abs=0.01)
    assert selector.model_(torch.zeros(2, 10)).shape == (2, 2)

    strength = SparseFeatureSelector(3, importance="strength", random_state=0, **FAST).fit(X, y)
    best = strength.history_.best_epoch
    np.testing.assert_allclose(strength.feature_importances_, strength.importance_history_[best])
    dense = SparseFeatureSelector(3, random_state=0, **{**FAST, "density": 1.0}).fit(X, y)
    assert dense.sparsity_stats_ is None and not hasattr(dense.model_[0], "weight_mask")


def test_degree_counts_active_input_connections() -> None:
    X, y = _xor(120)
    selector = SparseFeatureSelector(3, importance="degree", random_state=0, **FAST).fit(X, y)
    mask = selector.model_[0].weight_mask
    np.testing.assert_array_equal(selector.feature_importances_, mask.sum(0).numpy())


def test_a_callable_importance_gets_the_trained_model_and_standardised_data() -> None:
    X, y = _xor(120)
    X[:, 3] *= 100.0
    seen = {}

    def last_columns(model, inputs, targets):
        seen.update(model=model, inputs=inputs, targets=targets)
        return np.arange(inputs.shape[1], dtype=float)

    selector = SparseFeatureSelector(2, importance=last_columns, random_state=0, **FAST)
    selector.fit(X, y)
    assert list(selector.get_support(indices=True)) == [8, 9]
    assert seen["model"] is selector.model_
    assert seen["inputs"].std(dim=0).max() < 1.01 and seen["targets"].dtype == torch.long
    assert selector.importance_history_.shape == (1, 10)
    with pytest.raises(ValueError, match="must return 10 finite scores"):
        SparseFeatureSelector(2, importance=lambda m, x, t: np.ones(3), **FAST).fit(X, y)


def test_regression_targets_are_supported() -> None:
    X, y = make_regression(
        n_samples=200, n_features=20, n_informative=3, noise=1.0, shuffle=False, random_state=0
    )
    selector = SparseFeatureSelector(
        3, hidden=(32,), density=0.5, epochs=15, batch_size=32, lr=1e-2, random_state=0
    ).fit(X, y)
    assert set(selector.get_support(indices=True)) == {0, 1, 2}
    assert selector.model_(torch.zeros(1, 20)).shape == (1, 1)


def test_the_issue_pipeline_fits_and_scores() -> None:
    X, y = make_classification(
        n_samples=120, n_features=30, n_informative=5, n_redundant=0, random_state=0
    )
    pipe = make_pipeline(StandardScaler(), SparseFeatureSelector(20), SVC())
    assert pipe.fit(X, y).score(X, y) > 0.8
    assert pipe[:-1].transform(X).shape == (120, 20)


def test_clone_grid_search_cross_validation_and_pandas_output() -> None:
    pd = pytest.importorskip("pandas")
    X, y = _xor(120)
    selector = SparseFeatureSelector(2, random_state=0, **{**FAST, "epochs": 5})
    twin = clone(selector)
    assert twin.get_params() == selector.get_params() and not hasattr(twin, "ranking_")
    search = GridSearchCV(
        make_pipeline(selector, SVC()),
        {"sparsefeatureselector__density": [0.3, 0.6]},
        cv=2,
    ).fit(X, y)
    assert search.best_params_["sparsefeatureselector__density"] in (0.3, 0.6)
    assert len(cross_val_score(make_pipeline(selector, SVC()), X, y, cv=2)) == 2
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(10)])
    out = clone(selector).set_output(transform="pandas").fit(frame, y).transform(frame)
    assert isinstance(out, pd.DataFrame) and out.shape == (120, 2)
    assert set(out.columns) <= set(frame.columns)


def test_a_fitted_selector_pickles() -> None:
    X, y = _xor(60)
    selector = SparseFeatureSelector(2, random_state=0, **{**FAST, "epochs": 3}).fit(X, y)
    again = pickle.loads(pickle.dumps(selector))
    np.testing.assert_array_equal(again.transform(X), selector.transform(X))


@pytest.mark.parametrize(
    "estimator",
    [
        SparseFeatureSelector(hidden=(8,), density=0.5, epochs=3),
        QuickSelection(hidden=8, density=0.5, epochs=3),
    ],
    ids=["SparseFeatureSelector", "QuickSelection"],
)
def test_scikit_learn_estimator_checks(estimator) -> None:
    results = check_estimator(estimator, on_fail=None, on_skip=None)
    failed = [(r["check_name"], str(r["exception"])) for r in results if r["status"] == "failed"]
    assert not failed
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert skipped <= {"check_array_api_input"}, skipped  # needs SCIPY_ARRAY_API; torch inside


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"importance": "atribution"},
            "importance: 'atribution' is not valid (did you mean 'attribution'?); choose one of "
            "['attribution', 'strength', 'degree']",
        ),
        ({"updater": "sett"}, "updater: 'sett' is not valid (did you mean 'set'?)"),
        ({"updater": 3}, "updater: 3 is not valid; give one of"),
        ({"updater": {"name": "rigl", "intervall": 5}}, "unknown key 'updater.intervall'"),
        ({"distribution": "normal"}, "distribution: 'normal' is not valid"),
        ({"density": 0.0}, "density must lie in (0, 1], got 0.0"),
        ({"n_features_to_select": 0}, "n_features_to_select must be an integer >= 1, got 0"),
        ({"n_features_to_select": 1.5}, "n_features_to_select must lie in (0, 1), got 1.5"),
        ({"n_features_to_select": "ten"}, "n_features_to_select: 'ten' is not valid"),
        ({"n_features_to_select": 11}, "n_features_to_select: 11 is not valid; the data has 10"),
        ({"hidden": (64, 0)}, "hidden must be an integer >= 1, got 0"),
        ({"task": "clf"}, "task: 'clf' is not valid"),
        ({"batch_size": "big"}, "batch_size must be an integer >= 1, got 'big'"),
        ({"validation_fraction": 1.0}, "validation_fraction must lie in (0, 1), got 1.0"),
        ({"random_state": "zero"}, "random_state: 'zero' is not valid"),
    ],
)
def test_bad_parameters_name_the_parameter_value_and_choices(params, message: str) -> None:
    X, y = _xor(40)
    selector = SparseFeatureSelector(**{**FAST, "epochs": 1, **params})
    with pytest.raises(ConfigError) as error:
        selector.fit(X, y)
    assert message in str(error.value)


def test_an_updater_instance_is_used_as_given() -> None:
    X, y = _xor(60)
    updater = sn.RigL(interval=2, drop_fraction=0.1)
    selector = SparseFeatureSelector(2, updater=updater, random_state=0, **{**FAST, "epochs": 2})
    assert selector.fit(X, y).sparsity_stats_ is not None


# -- QuickSelection ------------------------------------------------------------------------


def test_quickselection_beats_random_columns_on_digits() -> None:
    """The paper's evaluation in small: a forest on the top 10 pixels chosen without labels
    against the same forest on 10 random pixels (a data-blind selector, on average)."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X[:600], y[:600], test_size=0.4, random_state=0, stratify=y[:600]
    )

    def accuracy(columns: np.ndarray) -> float:
        forest = ExtraTreesClassifier(50, random_state=0).fit(X_train[:, columns], y_train)
        return forest.score(X_test[:, columns], y_test)

    selector = QuickSelection(10, epochs=10, batch_size=20, random_state=0).fit(X_train)
    rng = np.random.default_rng(0)
    chance = np.mean([accuracy(rng.choice(64, 10, replace=False)) for _ in range(8)])
    assert accuracy(selector.get_support()) > chance + 0.1


def test_quickselection_is_seeded() -> None:
    X = np.random.default_rng(0).standard_normal((80, 12))
    a = QuickSelection(4, hidden=32, epochs=5, batch_size=16, random_state=1).fit(X)
    b = QuickSelection(4, hidden=32, epochs=5, batch_size=16, random_state=1).fit(X)
    np.testing.assert_array_equal(a.feature_importances_, b.feature_importances_)
    assert a.model_(torch.zeros(1, 12)).shape == (1, 12)
    assert a.importance_history_.shape == (5, 12)
    np.testing.assert_allclose(a.feature_importances_, a.importance_history_[-1])
    assert a.sparsity_stats_ is not None and a.get_support().sum() == 4


def test_quickselection_rejects_attribution() -> None:
    with pytest.raises(ConfigError, match="choose one of \\['strength', 'degree'\\]"):
        QuickSelection(importance="attribution").fit(np.ones((4, 3)))


def test_the_docs_quickstart_runs_verbatim(tmp_path: Path, monkeypatch) -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", DOCS.read_text(encoding="utf-8"), re.M | re.S)
    assert len(blocks) >= 3  # selectors, training loop, robustness: every one runs
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(DOCS), "exec"), {})
