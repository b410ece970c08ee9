"""The battery's own logic, apart from any implementation's numbers: `Battery.adapt` as a table of (what a subject
supports, the spec a check asks for) -> the whole spec it runs instead, one row per branch and per fallback order
(depth 2, 1, 3; hidden activation tanh, sigmoid, relu, linear; loss mse, bce; output linear, tanh, sigmoid, relu;
optimizer sgd, momentum, adam with their learning rates; batch size full, 3, 1, 2; min_width at and past the width;
uniform hidden activations; losses_by_output pairs; the battery's dtype), every expected spec written out by hand;
`Battery.detect` on undeclared and declared factories (the best agreeing form unless the declared one agrees, whether
a declaration is contradicted, every form's verdict, detection up to the check's last update only, no later operation
detected from an earlier one's); `Battery.conventions` (the detected form of each operation a spec uses, the default
of the others and where a detection skips); and the battery's words and bookkeeping: `needs`' and a declining
constructor's skip messages, a bad dtype or level, a declared known difference modelled unless strict (and never for
the weights read back), the model named after a passing verdict, and each check's seconds."""
from __future__ import annotations

import pytest

from xor_rosetta.checks import verify
from xor_rosetta.checks.battery import Battery
from xor_rosetta.checks.judging import SkipCheck
from xor_rosetta.checks.subject import BadTarget, Subject
from xor_rosetta.errors import SpecError, Unsupported
from xor_rosetta.interface import Conventions
from xor_rosetta.reference import Reference
from xor_rosetta.spec import Optimizer, Spec

ALL = {  # what a subject that declares nothing supports, written out
    "dtypes": ("float32", "float64"), "optimizers": ("sgd", "momentum", "adam"), "losses": ("mse", "bce"),
    "activations": ("tanh", "sigmoid", "relu", "linear"), "output_activations": ("tanh", "sigmoid", "relu", "linear"),
    "batch_sizes": (None, 1, 2, 3, 4), "hidden_layers": (1, 2, 3), "uniform_hidden_activations": False,
    "min_width": 1, "losses_by_output": None,
}
SGD, SGD_HALF = Optimizer("sgd", lr=0.1), Optimizer("sgd", lr=0.5)
MOMENTUM = Optimizer("sgd", lr=0.05, momentum=0.9)  # adapt's momentum fallback
MOMENTUM_OWN = Optimizer("sgd", lr=0.2, momentum=0.5)
ADAM = Optimizer("adam", lr=1e-3)  # adapt's adam fallback
ADAM_OWN = Optimizer("adam", lr=0.01)


def S(layers, activations, loss="mse", optimizer=SGD, batch_size=None, dtype="float64") -> Spec:
    return Spec(layers=layers, activations=activations, loss=loss, optimizer=optimizer, steps=10,
                batch_size=batch_size, dtype=dtype)


def battery(dtype="float64", **supports) -> Battery:
    """A battery on a subject declaring ALL but `supports`; adapt and needs never call its factory."""
    def never(spec, params):
        raise AssertionError("adapt and needs run nothing")
    return Battery(Subject("declared", never, supports={**ALL, **supports}), dtype=dtype)


NUMPY = S((2, 5, 1), ("tanh", "linear"))  # seed-numpy's network
KERAS = S((2, 5, 5, 1), ("relu", "relu", "sigmoid"), "bce", ADAM)  # seed-keras' network
THREE = S((2, 3, 3, 3, 1), ("tanh", "sigmoid", "relu", "tanh"), "mse", MOMENTUM_OWN, 2, "float32")

ADAPT = [  # (id, supports, spec asked for, spec run)
    # everything supported: unchanged (depth 1 and 3 kept, a tanh output on mse kept, every hidden activation kept)
    ("all-numpy", {}, NUMPY, NUMPY),
    ("all-keras", {}, KERAS, KERAS),
    ("all-three-hidden", {}, THREE, THREE),
    # depth: 2 first, then 1, then 3; the first width and the last hidden activation repeat; none declared: kept
    ("depth-1-to-2", {"hidden_layers": (2, 3)}, NUMPY, S((2, 5, 5, 1), ("tanh", "tanh", "linear"))),
    ("depth-3-to-2", {"hidden_layers": (1, 2)}, S((2, 4, 4, 4, 1), ("relu", "sigmoid", "tanh", "linear")),
     S((2, 4, 4, 1), ("relu", "sigmoid", "linear"))),
    ("depth-2-to-1", {"hidden_layers": (1, 3)}, S((2, 5, 5, 1), ("relu", "sigmoid", "linear")),
     S((2, 5, 1), ("relu", "linear"))),
    ("depth-1-to-3", {"hidden_layers": (3,)}, NUMPY, S((2, 5, 5, 5, 1), ("tanh", "tanh", "tanh", "linear"))),
    ("depth-none-declared", {"hidden_layers": ()}, NUMPY, NUMPY),
    # hidden activations: only the unsupported ones swap, for tanh, else sigmoid, else relu, else linear
    ("hidden-sigmoid", {"activations": ("sigmoid", "relu")}, S((2, 4, 4, 1), ("relu", "tanh", "linear")),
     S((2, 4, 4, 1), ("relu", "sigmoid", "linear"))),
    ("hidden-tanh", {"activations": ("linear", "relu", "sigmoid", "tanh")}, S((2, 4, 1), ("sigmoid", "linear")),
     S((2, 4, 1), ("sigmoid", "linear"))),
    ("hidden-relu", {"activations": ("linear", "relu")}, NUMPY, S((2, 5, 1), ("relu", "linear"))),
    ("hidden-linear", {"activations": ("linear",)}, NUMPY, S((2, 5, 1), ("linear", "linear"))),
    # loss and output: bce takes a sigmoid output; a changed loss or an unsupported output takes mse and the
    # first output of linear, tanh, sigmoid, relu
    ("mse-to-bce", {"losses": ("bce",)}, NUMPY, S((2, 5, 1), ("tanh", "sigmoid"), "bce")),
    ("bce-to-mse", {"losses": ("mse",)}, KERAS, S((2, 5, 5, 1), ("relu", "relu", "linear"), "mse", ADAM)),
    ("bce-without-sigmoid-output", {"output_activations": ("linear", "tanh")}, KERAS,
     S((2, 5, 5, 1), ("relu", "relu", "linear"), "mse", ADAM)),
    ("bce-without-sigmoid-output-tanh", {"output_activations": ("tanh", "relu")}, KERAS,
     S((2, 5, 5, 1), ("relu", "relu", "tanh"), "mse", ADAM)),
    ("output-tanh", {"output_activations": ("relu", "sigmoid", "tanh")}, NUMPY, S((2, 5, 1), ("tanh", "tanh"))),
    ("output-sigmoid", {"output_activations": ("relu", "sigmoid")}, NUMPY, S((2, 5, 1), ("tanh", "sigmoid"))),
    ("output-relu", {"output_activations": ("relu",)}, NUMPY, S((2, 5, 1), ("tanh", "relu"))),
    ("sigmoid-output-on-mse-kept", {"output_activations": ("sigmoid", "linear")}, S((2, 5, 1), ("tanh", "sigmoid")),
     S((2, 5, 1), ("tanh", "sigmoid"))),
    # optimizer: a supported kind is kept as it is; else sgd at lr 0.1, else momentum 0.9 at lr 0.05, else adam 1e-3
    ("adam-kept", {"optimizers": ("adam",)}, S((2, 5, 1), ("tanh", "linear"), optimizer=ADAM_OWN),
     S((2, 5, 1), ("tanh", "linear"), optimizer=ADAM_OWN)),
    ("momentum-kept", {"optimizers": ("momentum",)}, S((2, 5, 1), ("tanh", "linear"), optimizer=MOMENTUM_OWN),
     S((2, 5, 1), ("tanh", "linear"), optimizer=MOMENTUM_OWN)),
    ("sgd-kept", {"optimizers": ("sgd",)}, S((2, 5, 1), ("tanh", "linear"), optimizer=SGD_HALF),
     S((2, 5, 1), ("tanh", "linear"), optimizer=SGD_HALF)),
    ("adam-to-sgd", {"optimizers": ("momentum", "sgd")}, S((2, 5, 1), ("tanh", "linear"), optimizer=ADAM_OWN),
     S((2, 5, 1), ("tanh", "linear"), optimizer=Optimizer("sgd", lr=0.1))),
    ("momentum-to-sgd", {"optimizers": ("sgd", "adam")}, S((2, 5, 1), ("tanh", "linear"), optimizer=MOMENTUM_OWN),
     S((2, 5, 1), ("tanh", "linear"), optimizer=Optimizer("sgd", lr=0.1))),
    ("adam-to-momentum", {"optimizers": ("momentum",)}, S((2, 5, 1), ("tanh", "linear"), optimizer=ADAM_OWN),
     S((2, 5, 1), ("tanh", "linear"), optimizer=Optimizer("sgd", lr=0.05, momentum=0.9))),
    ("sgd-to-momentum", {"optimizers": ("adam", "momentum")}, S((2, 5, 1), ("tanh", "linear"), optimizer=SGD_HALF),
     S((2, 5, 1), ("tanh", "linear"), optimizer=Optimizer("sgd", lr=0.05, momentum=0.9))),
    ("sgd-to-adam", {"optimizers": ("adam",)}, S((2, 5, 1), ("tanh", "linear"), optimizer=SGD_HALF),
     S((2, 5, 1), ("tanh", "linear"), optimizer=Optimizer("adam", lr=0.001))),
    # batch size: a supported one is kept (full batch when 4 is declared); else full batch, 3, 1, 2; else full
    ("batch-kept", {"batch_sizes": (2, 3)}, S((2, 5, 1), ("tanh", "linear"), batch_size=2),
     S((2, 5, 1), ("tanh", "linear"), batch_size=2)),
    ("batch-full-as-4", {"batch_sizes": (2, 4)}, NUMPY, NUMPY),
    ("batch-to-full", {"batch_sizes": (None, 1, 3)}, S((2, 5, 1), ("tanh", "linear"), batch_size=2), NUMPY),
    ("batch-3-to-full", {"batch_sizes": (1, None)}, S((2, 5, 1), ("tanh", "linear"), batch_size=3), NUMPY),
    ("batch-to-1-though-4", {"batch_sizes": (4, 1)}, S((2, 5, 1), ("tanh", "linear"), batch_size=2),
     S((2, 5, 1), ("tanh", "linear"), batch_size=1)),
    ("batch-full-to-3", {"batch_sizes": (1, 3)}, NUMPY, S((2, 5, 1), ("tanh", "linear"), batch_size=3)),
    ("batch-full-to-1", {"batch_sizes": (2, 1)}, NUMPY, S((2, 5, 1), ("tanh", "linear"), batch_size=1)),
    ("batch-full-to-2", {"batch_sizes": (2,)}, NUMPY, S((2, 5, 1), ("tanh", "linear"), batch_size=2)),
    ("batch-3-to-full-none-of-3-1-2", {"batch_sizes": (4,)}, S((2, 5, 1), ("tanh", "linear"), batch_size=3), NUMPY),
    # min_width: just at the width, kept; just past it, widened (every hidden layer)
    ("min-width-at", {"min_width": 5}, KERAS, KERAS),
    ("min-width-past", {"min_width": 6}, KERAS, S((2, 6, 6, 1), ("relu", "relu", "sigmoid"), "bce", ADAM)),
    # uniform hidden activations: the first one, everywhere
    ("uniform", {"uniform_hidden_activations": True}, S((2, 4, 4, 1), ("relu", "sigmoid", "linear")),
     S((2, 4, 4, 1), ("relu", "relu", "linear"))),
    ("uniform-three", {"uniform_hidden_activations": True}, THREE,
     S((2, 3, 3, 3, 1), ("tanh", "tanh", "tanh", "tanh"), "mse", MOMENTUM_OWN, 2, "float32")),
    # losses_by_output: a pair it computes (outputs linear, sigmoid, tanh, relu; bce on a sigmoid only), the loss
    # kept if some pair has it; none: left as it is
    ("by-output-kept", {"losses_by_output": {"linear": ("mse",)}}, NUMPY, NUMPY),
    ("by-output-to-bce", {"losses_by_output": {"sigmoid": ("bce",), "linear": ()}}, NUMPY,
     S((2, 5, 1), ("tanh", "sigmoid"), "bce")),
    ("by-output-keeps-loss", {"losses_by_output": {"relu": ("mse",), "sigmoid": ("bce", "mse")}},
     S((2, 5, 1), ("tanh", "tanh")), S((2, 5, 1), ("tanh", "sigmoid"))),
    ("by-output-linear-first", {"losses_by_output": {"tanh": ("mse",), "linear": ("mse",), "sigmoid": ("bce",)}},
     S((2, 5, 1), ("tanh", "relu")), NUMPY),
    ("by-output-no-bce-on-tanh", {"losses_by_output": {"tanh": ("bce", "mse")}}, KERAS,
     S((2, 5, 5, 1), ("relu", "relu", "tanh"), "mse", ADAM)),
    ("by-output-undeclared-loss", {"losses": ("mse",), "losses_by_output": {"sigmoid": ("bce", "mse")}}, NUMPY,
     S((2, 5, 1), ("tanh", "sigmoid"))),
    ("by-output-pair-kept", {"losses_by_output": {"linear": ("mse",), "tanh": ("mse",)}},
     S((2, 5, 1), ("tanh", "tanh")), S((2, 5, 1), ("tanh", "tanh"))),
    ("by-output-relu", {"losses_by_output": {"relu": ("mse",)}}, NUMPY, S((2, 5, 1), ("tanh", "relu"))),
    ("by-output-none-fits", {"output_activations": ("linear",), "losses_by_output": {"relu": ("mse",)}}, NUMPY,
     NUMPY),
]


@pytest.mark.parametrize("supports, spec, want", [c[1:] for c in ADAPT], ids=[c[0] for c in ADAPT])
def test_adapt_swaps_only_what_the_subject_does_not_support(supports, spec, want):
    assert battery(**supports).adapt(spec) == want


@pytest.mark.parametrize("dtype, spec, want", [
    ("float32", NUMPY, S((2, 5, 1), ("tanh", "linear"), dtype="float32")),
    ("float64", S((2, 5, 1), ("tanh", "linear"), dtype="float32"), S((2, 5, 1), ("tanh", "linear"), dtype="float32")),
    ("float32", KERAS, S((2, 5, 5, 1), ("relu", "relu", "sigmoid"), "bce", ADAM, dtype="float32")),
], ids=["float64-to-battery-float32", "float32-kept-in-float64", "keras-float32"])
def test_adapt_runs_float64_specs_in_the_batterys_dtype(dtype, spec, want):
    assert battery(dtype).adapt(spec) == want


def test_adapt_never_swaps_in_a_loss_the_subject_does_not_declare():
    """bce without a sigmoid output and without mse: no valid spec; not one with mse, which it does not compute."""
    with pytest.raises(SpecError, match="bce"):
        battery(losses=("bce",), output_activations=("linear", "tanh")).adapt(KERAS)


def test_needs_says_what_is_unsupported():
    b = battery(optimizers=("sgd",))
    assert b.needs(NUMPY) is None
    with pytest.raises(SkipCheck) as e:
        b.needs(KERAS)
    assert str(e.value) == "unsupported: adam is not among its declared optimizers"


# detection

def computing(adam="torch", declared=None):
    """A factory computing the reference's maths in Adam form `adam`; declaring Adam form `declared` (None: nothing)."""
    def factory(spec, params):
        return Reference(spec, params, Conventions(adam=adam))
    if declared is not None:
        factory.conventions = Conventions(adam=declared)
    return factory


ADAM_FORMS = {"torch", "keras", "optax", "keras-torch", "textbook"}


def test_detection_of_an_undeclared_form_contradicts_nothing():
    """Undeclared optax Adam: optax detected (the closest of the agreeing torch, optax, textbook); every form has a
    verdict; nothing is declared, so nothing is contradicted."""
    rep = verify(computing("optax"), level="quick", ids=["update_adam"])
    d = rep.conventions["adam"]
    assert d["form"] == "optax" and d["declared"] is None and d["contradicts"] is False
    assert "torch" in d["consistent"] and "keras" not in d["consistent"]
    assert set(d["verdicts"]) == ADAM_FORMS and all(isinstance(w, str) and w for w in d["verdicts"].values())


def test_detection_keeps_a_declared_form_that_agrees_though_another_agrees_more_closely():
    """optax Adam declaring torch's: torch agrees (less closely than optax), so torch it is, and no contradiction."""
    rep = verify(computing("optax", declared="torch"), level="quick", ids=["update_adam"])
    d = rep.conventions["adam"]
    assert rep.passed
    assert d["declared"] == "torch" and "optax" in d["consistent"]
    assert d["form"] == "torch" and d["contradicts"] is False


def test_detection_says_a_declared_form_that_disagrees_is_contradicted():
    rep = verify(computing("optax", declared="keras"), level="quick", ids=["update_adam"])
    d = rep.conventions["adam"]
    assert d["declared"] == "keras" and "keras" not in d["consistent"]
    assert d["form"] == "optax" and d["contradicts"] is True


def test_detection_with_a_declared_form_and_no_agreeing_one_contradicts_nothing():
    """Adam in no modelled form (lr doubled) declaring torch's: no form is detected, so none is contradicted."""
    class Doubled(Reference):
        conventions = Conventions(adam="torch")

        def __init__(self, spec, params):
            super().__init__(spec, params, Conventions())
            self.optimizer.opt = Optimizer("adam", lr=2 * spec.optimizer.lr, beta1=spec.optimizer.beta1,
                                           beta2=spec.optimizer.beta2, epsilon=spec.optimizer.epsilon)

    b = Battery(Doubled, level="quick")
    assert b.run("update_adam").status == "fail"
    d = b.detected["adam"]
    assert d["declared"] == "torch" and d["consistent"] == [] and d["form"] is None
    assert d["contradicts"] is False


def test_detection_does_not_detect_the_operations_detected_after_it():
    """Adam is detected first: its script uses BCE too, judged in the declared (default) BCE form, without running
    the BCE detection."""
    rep = verify(computing(), level="quick", ids=["update_adam"])
    assert set(rep.conventions) == {"adam"} and rep.conventions["adam"]["form"] == "torch"


class RightForThreeUpdates(Reference):
    """torch's SGD momentum for three updates, then each update's gradient doubled: the momentum check judges the
    first three updates only (its script runs eight), so it passes in torch's form."""

    def __init__(self, spec, params):
        super().__init__(spec, params, Conventions())
        step, self.updates = self.optimizer.step, 0

        def stepped(arrays, grads):
            self.updates += 1
            step(arrays, grads if self.updates <= 3 else [2 * g for g in grads])
        self.optimizer.step = stepped


def test_momentum_is_detected_on_its_first_three_updates_only():
    rep = verify(RightForThreeUpdates, level="quick", ids=["update_momentum"])
    (r,) = rep.results
    assert r.status == "pass", r.verdict
    assert rep.conventions["momentum"]["form"] == "torch"


# conventions

KERAS_EVERYWHERE = Conventions(adam="keras", momentum="keras", bce="logits")
MOMENTUM_NET = S((2, 5, 1), ("tanh", "linear"), optimizer=MOMENTUM)


def keras_everywhere(spec, params):
    return Reference(spec, params, KERAS_EVERYWHERE)


@pytest.mark.parametrize("spec, want, detected", [
    (NUMPY, Conventions(), set()),
    (KERAS, Conventions(adam="keras", bce="logits"), {"adam", "bce"}),
    (MOMENTUM_NET, Conventions(momentum="keras"), {"momentum"}),
], ids=["sgd-mse-detects-nothing", "adam-bce", "momentum"])
def test_conventions_detect_the_forms_of_the_operations_the_spec_uses_only(spec, want, detected):
    """An undeclared subject in Keras' form of everything: a spec is judged in the detected form of each operation
    it uses, the default form of the others, and no detection runs for an operation it does not use."""
    b = Battery(keras_everywhere, level="quick")
    assert b.conventions(spec) == want
    assert set(b.detected) == detected


def test_conventions_keep_the_default_form_where_the_detection_is_skipped():
    """SGD only: the Adam detection skips (its script adapted to SGD), so Adam keeps the default form."""
    b = Battery(Subject("sgd-only", keras_everywhere, supports={**ALL, "optimizers": ("sgd",)}), level="quick")
    assert b.conventions(KERAS) == Conventions(bce="logits")
    assert b.results["update_adam"].status == "skip" and "adam" not in b.detected


def test_conventions_asked_again_after_the_detections_keep_the_detected_forms():
    """A detection ended is no longer under way: asked again (the checks judged after it), the forms it found hold."""
    b = Battery(keras_everywhere, level="quick")
    b.run("update_adam")
    b.run("loss_bce")
    assert b.conventions(KERAS) == Conventions(adam="keras", bce="logits")
    assert b.conventions(KERAS) == Conventions(adam="keras", bce="logits")


# records and judging

def test_a_declining_constructor_skips_the_check_and_says_why():
    def declines(spec, params):
        raise Unsupported("no probes here\nsecond line")

    r = Battery(declines, level="quick").run("construction")
    assert r.status == "skip"
    assert r.verdict == ("unsupported: probe-n: no probes here (its constructor declines); "
                         "probe-k: no probes here (its constructor declines)")


class Float32Inside(Reference):
    """Declares float32 arithmetic inside its float64 runs, and also rounds the weights it is given through float32,
    which no arithmetic explains: params() reads back what it was given, judged in float64 whatever it declares."""
    known_differences = {"float64": "Float32 inside: the weights are stored in float32"}

    def __init__(self, spec, params):
        super().__init__(spec, params, Conventions())

    def params(self):
        return [(W.astype("float32").astype("float64"), b.astype("float32").astype("float64"))
                for W, b in super().params()]


def test_a_declared_known_difference_does_not_excuse_the_weights_read_back():
    r = Battery(Float32Inside, level="quick").run("construction")
    assert r.status == "fail" and r.verdict.startswith("DISAGREES: params differ by"), r.verdict
    assert r.allowed < 1e-9  # float64's tolerance (relative 5e-13), not float32's (5e-6)


# the battery itself

@pytest.mark.parametrize("kwargs, message", [
    ({"dtype": "float16"}, "unknown dtype 'float16'; choose one of: float32, float64"),
    ({"level": "slow"}, "unknown level 'slow'; choose one of: full, quick"),
], ids=["dtype", "level"])
def test_an_unknown_dtype_or_level_is_a_bad_target(kwargs, message):
    with pytest.raises(BadTarget) as e:
        Battery(keras_everywhere, **kwargs)
    assert str(e.value) == message


@pytest.mark.parametrize("dtypes, named", [(("float32",), "float32"), (["float32", "float32"], "float32, float32")])
def test_a_dtype_the_subject_does_not_declare_leaves_nothing_to_run(dtypes, named):
    with pytest.raises(BadTarget) as e:
        Battery(Subject("thirty-two", keras_everywhere, supports={**ALL, "dtypes": dtypes}))
    assert str(e.value) == f"thirty-two declares dtypes {named} only; --dtype float64 leaves nothing to run"


class ExactButDeclaresADifference(Reference):
    """Computes the reference exactly in float64, and declares float32 arithmetic inside (as Keras on JAX does)."""
    known_differences = {"float64": "Keras on JAX: float32 inside"}

    def __init__(self, spec, params):
        super().__init__(spec, params, Conventions())


def test_a_declared_known_difference_is_modelled_unless_strict():
    b = Battery(ExactButDeclaresADifference, level="quick")
    assert b.modelled is True and b.policy(NUMPY) == "float32" and b.seconds == 0.0
    strict = Battery(ExactButDeclaresADifference, level="quick", strict=True)
    assert strict.modelled is False and strict.policy(NUMPY) == "float64"


def test_a_check_passed_under_the_model_says_so_after_its_verdict():
    r = Battery(ExactButDeclaresADifference, level="quick").run("forward")
    assert r.status == "pass" and r.modelled == "Keras on JAX: float32 inside"
    assert r.verdict == "agrees (float32 inside: Keras on JAX)"


def test_each_check_records_its_seconds_to_the_millisecond():
    ids = ["construction", "forward", "loss", "gradients", "update_sgd", "update_adam", "loss_bce"]
    rep = verify(keras_everywhere, level="quick", ids=ids)
    for r in rep.results:
        s = r.data["seconds"]
        assert type(s) is float and 0.0 <= s < 60.0 and s == round(s, 3), (r.id, s)
    assert any(r.data["seconds"] > 0 for r in rep.results)
