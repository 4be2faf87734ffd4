"""Server mutants switch declared behaviour: each names fields of ``CABehaviour`` and the
reference CA hands those fields to the components that read them.

A rename of a field, a field nothing reads, or a mutant that patches a component
instead fails here, in seconds, not in the ten-minute kill matrix.
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib

import pytest
from scapy.layers.dcerpc import RPC_C_AUTHN

import conformance
from conformance.mutation.server import MUTANTS, Mutant, UnknownBehaviourPath, with_changes
from conformance.refca.behaviour import CABehaviour
from conformance.refca.ca import ReferenceCA
from conformance.refca.config import load_config
from conformance.refca.rpc.calls import ConnectionInfo

ROOT = pathlib.Path(conformance.__file__).parent
REFCA, MUTATION = ROOT / "refca", ROOT / "mutation"
CONN = ConnectionInfo(local_host="127.0.0.1", local_port=135, peer_host="127.0.0.1", peer_port=5000)


def leaf_values(behaviour: CABehaviour) -> dict[str, object]:
    """``component.field`` -> value, for every field of every component."""
    return {f"{part.name}.{leaf.name}": getattr(getattr(behaviour, part.name), leaf.name)
            for part in dataclasses.fields(behaviour)
            for leaf in dataclasses.fields(getattr(behaviour, part.name))}


def behaviour_classes() -> list[type]:
    return [CABehaviour, *(type(getattr(CABehaviour(), f.name)) for f in dataclasses.fields(CABehaviour))]


# -- (a) a mutant changes exactly the fields it names -------------------------------------

@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_a_mutant_changes_exactly_the_fields_it_names(name):
    mutant = MUTANTS[name]
    reference, mutated = leaf_values(CABehaviour()), leaf_values(mutant.behaviour())
    changed = {path for path in reference if reference[path] != mutated[path]}
    assert changed == set(mutant.changes), f"{name} names {sorted(mutant.changes)} but changes {sorted(changed)}"
    for path, value in mutant.changes.items():
        assert mutated[path] == value != reference[path]


def test_every_server_requirement_a_case_cites_has_a_mutant():
    """The kill matrix proves each such requirement's cases can fail (README: Mutants)."""
    from conformance.judge.tables import load_cases
    from conformance.model.cases import case_files
    from conformance.model.catalogue import load_catalogue

    catalogue = load_catalogue()
    cited = {r for c in load_cases(case_files(), catalogue) for r in c.requirements
             if catalogue[r].binds in ("server", "both")}
    assert sorted(cited - {m.requirement for m in MUTANTS.values()} - {"WCCE-T-01"}) == []
    assert all(isinstance(m, Mutant) and m.name == key for key, m in MUTANTS.items())


def test_behaviour_applies_over_a_base():
    base = with_changes(CABehaviour(), {"association.max_frag": 4280})
    mutated = MUTANTS["plaintext-at-privacy"].behaviour(base)
    assert mutated.association.max_frag == 4280 and mutated.association.seal_at_privacy is False


# -- (b) a path that names no field raises ---------------------------------------------------

@pytest.mark.parametrize("path", [
    "association.seal_at_privac",  # misspelt field
    "asociation.seal_at_privacy",  # misspelt component
    "seal_at_privacy",  # no component
    "association.seal_at_privacy.extra",  # below a leaf
    "association.",
    "",
])
def test_an_unknown_path_raises(path):
    with pytest.raises(UnknownBehaviourPath):
        with_changes(CABehaviour(), {path: False})
    with pytest.raises(UnknownBehaviourPath):
        Mutant("typo", "RPCE-PROT-01", "a misspelt switch", {path: False})


def test_a_mutant_that_changes_nothing_is_refused():
    with pytest.raises(ValueError):
        Mutant("no-op", "RPCE-PROT-01", "changes nothing", {})


# -- (c) the reference CA hands each component its changed value ----------------------------

#: component of CABehaviour -> the value the running component holds (how it got there
#: is the CA's business: this reads what the component will decide with)
HELD = {
    "association": lambda ca: ca._association_factory(ca.exporter, "exporter")(CONN).policy,
    "exporter": lambda ca: ca.exporter.behaviour,
    "scm": lambda ca: ca.scm.behaviour,
    "service": lambda ca: ca.service.behaviour,
    "ntlm": lambda ca: ca.acceptors()[RPC_C_AUTHN.WINNT]().behaviour,
    "kerberos": lambda ca: ca.kerberos_acceptor().behaviour,
}


def test_every_component_is_checked():
    assert set(HELD) == {f.name for f in dataclasses.fields(CABehaviour)}


@pytest.fixture(scope="module")
def make_ca(tmp_path_factory):
    state = tmp_path_factory.mktemp("ca-state")  # one CA key for every build
    built: list[ReferenceCA] = []

    def make(behaviour: CABehaviour | None) -> ReferenceCA:
        ca = ReferenceCA(load_config(None, host="127.0.0.1", port=0, state_dir=state), behaviour=behaviour)
        built.append(ca)
        return ca

    yield make
    for ca in built:
        ca.store.close()


def test_the_reference_ca_holds_the_reference_behaviour(make_ca):
    ca = make_ca(None)
    assert ca.behaviour == CABehaviour()
    for component, held in HELD.items():
        assert held(ca) == getattr(CABehaviour(), component)
    assert ca.scm.activation_min_level == ca.config.policy.activation_min_level


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_the_ca_hands_each_component_the_mutants_value(name, make_ca):
    mutant = MUTANTS[name]
    ca = make_ca(mutant.behaviour())
    for path, value in mutant.changes.items():
        component, field = path.split(".")
        assert getattr(HELD[component](ca), field) == value, path


def test_spnego_wraps_the_same_ntlm_behaviour(make_ca):
    ca = make_ca(MUTANTS["skip-mechlistmic-check"].behaviour())
    [ntlm] = ca.acceptors()[RPC_C_AUTHN.GSS_NEGOTIATE]().ssps
    assert ntlm.behaviour.verify_mech_list_mic is False


def test_the_activation_level_override_wins_over_the_configuration(make_ca):
    ca = make_ca(MUTANTS["activation-at-connect"].behaviour())
    assert ca.scm.activation_min_level == MUTANTS["activation-at-connect"].changes["scm.activation_min_level_override"]
    assert ca.scm.activation_min_level < ca.config.policy.activation_min_level


# -- (d) every behaviour field is read somewhere in refca ------------------------------------

#: The names a component keeps its behaviour value under: a field counts as read where the
#: reference CA reads ``….behaviour.FIELD`` (or ``….policy.FIELD``, the association's), so
#: ``proposal.transfer_syntaxes`` or ``config.policy`` do not stand in for a field nothing reads.
HOLDERS = {"behaviour", "policy"}


def attributes_read(root: pathlib.Path) -> set[str]:
    """Names read as ``….behaviour.name`` or ``….policy.name`` in the modules under ``root``."""
    def holder(expr) -> str | None:
        return expr.attr if isinstance(expr, ast.Attribute) else getattr(expr, "id", None)

    return {node.attr for path in root.rglob("*.py") for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) and holder(node.value) in HOLDERS}


def unread_fields(classes, read: set[str]) -> list[str]:
    return [f"{cls.__name__}.{f.name}" for cls in classes for f in dataclasses.fields(cls) if f.name not in read]


def test_every_behaviour_field_is_read_by_the_reference_ca():
    assert unread_fields(behaviour_classes(), attributes_read(REFCA)) == []


def test_an_unread_field_is_found(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class Switches:
        read_one: bool = True
        nobody_reads_me: bool = True
        read_elsewhere: bool = True

    (tmp_path / "component.py").write_text(
        "def decide(self, proposal):\n"
        "    return self.behaviour.read_one and proposal.read_elsewhere\n")
    assert unread_fields([Switches], attributes_read(tmp_path)) == ["Switches.nobody_reads_me",
                                                                     "Switches.read_elsewhere"]


# -- (e) mutants neither subclass refca nor touch private attributes ---------------------------

def patching(source: str) -> list[str]:
    """What a mutation module does that a mutant must not: subclass a refca class, build a
    class with type(name, bases, dict), or assign/setattr an attribute starting with "_"."""
    tree = ast.parse(source)
    refca_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("conformance.refca"):
            refca_names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            refca_names.update((alias.asname or alias.name).split(".")[0] for alias in node.names
                               if alias.name.startswith("conformance.refca"))

    def root(expr) -> str | None:
        while isinstance(expr, ast.Attribute):
            expr = expr.value
        return expr.id if isinstance(expr, ast.Name) else None

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            found += [f"line {node.lineno}: class {node.name} subclasses {ast.unparse(base)}"
                      for base in node.bases if root(base) in refca_names]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "type" and len(node.args) == 3:
                found.append(f"line {node.lineno}: type() builds a class")
            if (node.func.id == "setattr" and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
                    and str(node.args[1].value).startswith("_")):
                found.append(f"line {node.lineno}: setattr of {node.args[1].value}")
            if node.func.id == "setattr" and len(node.args) >= 2 and not isinstance(node.args[1], ast.Constant):
                found.append(f"line {node.lineno}: setattr of a computed name")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store) and sub.attr.startswith("_"):
                        found.append(f"line {node.lineno}: assigns {ast.unparse(sub)}")
    return found


@pytest.mark.parametrize("path", sorted(MUTATION.glob("*.py")), ids=lambda p: p.name)
def test_mutation_modules_do_not_patch_the_reference_ca(path):
    assert patching(path.read_text()) == []


@pytest.mark.parametrize("source", [
    "from conformance.refca.rpc.association import Association\nclass M(Association): pass",
    "import conformance.refca.rpc.association as a\nclass M(a.Association): pass",
    "def apply(ca):\n    ca.association_class = type('M', (ca.association_class,), {})",
    "def apply(ca):\n    ca.service._check_name = lambda *a, **k: None",
    "def apply(ca):\n    ca.scm._activation_min_level = 2",
    "def apply(ca):\n    setattr(ca.exporter, '_min_level', 0)",
    "def apply(ca, switches):\n    for k, v in switches.items(): setattr(ca.exporter, k, v)",
])
def test_the_patching_check_sees_the_old_ways(source):
    assert patching(source)
