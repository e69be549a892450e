"""Choose and install the pseudopotential family that every pw.x run of the pipeline uses.

The selection rule, in order:

1. a family named in the config (``dft_compute.pseudo_family``) is used as it is, and must be installed (the
   offline families are installed on request);
2. a directory of the user's own UPF files (``dft_compute.pseudo_dir``) becomes a family of its own;
3. an installed SSSP PBE family (``aiida-pseudo install sssp``), because SSSP is the verified standard for
   Quantum ESPRESSO: efficiency before precision, newest version first, and only one that covers the elements;
4. otherwise the offline PseudoDojo 0.4 PBE scalar-relativistic family of
   :mod:`aiida_autopipe.core.pseudopotentials`, installed once and reused.

Whatever is chosen must recommend cutoffs (stringency "normal", Ry, as aiida-quantumespresso's protocols read
them) for every element asked for, and all its pseudopotentials for those elements must share one
exchange-correlation functional. The returned :class:`PseudoFamilyChoice` says which family, from where and
why, for the full config.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from aiida import orm
from aiida_pseudo.common.units import U
from aiida_pseudo.data.pseudo import UpfData
from aiida_pseudo.groups.family import CutoffsPseudoPotentialFamily, PseudoPotentialFamily
from aiida_pseudo.groups.mixins import RecommendedCutoffMixin

from aiida_autopipe.core.errors import InputError
from aiida_autopipe.core.pseudopotentials import (
    PSEUDO_FIELD,
    PSEUDODOJO_PBE_FR,
    PSEUDODOJO_PBE_SR,
    OfflineFamily,
    family_from_directory,
    parse_upf_header,
    provision_offline_family,
    pseudo_cache_dir,
    require_elements,
)

__all__ = ("PseudoFamilyChoice", "ensure_pseudo_family", "find_pseudo_family")

SSSP_INSTALL_HINT = "aiida-pseudo install sssp -v 1.3 -x PBE -p efficiency"
OFFLINE_SPECS = {spec.label: spec for spec in (PSEUDODOJO_PBE_SR, PSEUDODOJO_PBE_FR)}
# Extras written on the families this module installs, so a reused family still tells where it came from.
EXTRA_SOURCE = "autopipe_source"
EXTRA_CUTOFF_SOURCES = "autopipe_cutoff_sources"


@dataclasses.dataclass(frozen=True)
class PseudoFamilyChoice:
    """The family pw.x runs use: its label, where it came from, why it was chosen, and its functional.

    ``cutoffs`` is the family's recommended (ecutwfc, ecutrho) per element in Ry, default stringency.
    """

    label: str
    source: str
    reason: str
    functional: str
    cutoffs: dict[str, tuple[float, float]]

    def load(self) -> PseudoPotentialFamily:
        return _installed_family(self.label)

    def cutoffs_ry(self, elements: list[str]) -> tuple[float, float]:
        """(ecutwfc, ecutrho) in Ry as the family recommends them: the maximum over ``elements``."""
        family = self.load()
        require_elements(self.label, family.elements, elements)
        return family.get_recommended_cutoffs(elements=tuple(sorted(set(elements))), unit="Ry")

    def as_config(self) -> dict[str, str]:
        return {
            "label": self.label,
            "source": self.source,
            "reason": self.reason,
            "functional": self.functional,
        }


def _installed_family(label: str) -> PseudoPotentialFamily | None:
    query = orm.QueryBuilder().append(PseudoPotentialFamily, filters={"label": label})
    return query.first(flat=True)


def _install(offline: OfflineFamily) -> PseudoPotentialFamily:
    """Install (or reuse) an offline family: one UpfData per file, cutoffs 'normal' in Ry."""
    family = _installed_family(offline.label)
    if family is None:
        family = CutoffsPseudoPotentialFamily.create_from_folder(
            offline.upf_dir, offline.label, description=offline.source, pseudo_type=UpfData
        )
        family.base.extras.set_many(
            {EXTRA_SOURCE: offline.source, EXTRA_CUTOFF_SOURCES: offline.cutoff_sources}
        )
    if isinstance(family, RecommendedCutoffMixin) and "normal" not in family.get_cutoff_stringencies():
        # A family created by an interrupted earlier run: finish it rather than failing forever.
        family.set_cutoffs(offline.cutoffs, "normal", unit="Ry")
    return family


def _sssp_candidates() -> list[PseudoPotentialFamily]:
    """Installed SSSP PBE families, best first: efficiency before precision, then the newest version."""
    query = orm.QueryBuilder().append(PseudoPotentialFamily, filters={"label": {"like": "SSSP/%/PBE/%"}})
    families = [family for family in query.all(flat=True) if isinstance(family, RecommendedCutoffMixin)]

    def rank(family: PseudoPotentialFamily) -> tuple:
        _, version, _, protocol = family.label.split("/", 3)
        numbers = tuple(int(part) for part in version.split(".") if part.isdigit())
        return (protocol != "efficiency", tuple(-number for number in numbers))

    return sorted(families, key=rank)


def _functional(family: PseudoPotentialFamily, elements: list[str]) -> str:
    """The single functional of the family's pseudopotentials for ``elements`` (all when none are given)."""
    pseudos = family.get_pseudos(elements=elements) if elements else family.pseudos
    functionals = {
        element: parse_upf_header(pseudo.get_content(mode="r")).functional
        for element, pseudo in pseudos.items()
    }
    if len(set(functionals.values())) != 1:
        listing = ", ".join(f"{element}: {name}" for element, name in sorted(functionals.items()))
        raise InputError(
            PSEUDO_FIELD,
            f"family {family.label} mixes exchange-correlation functionals ({listing})",
            "choose a family generated with a single functional",
        )
    return next(iter(functionals.values()))


def _cutoffs_in_ry(family: RecommendedCutoffMixin) -> dict[str, tuple[float, float]]:
    to_ry = U.Quantity(1, family.get_cutoffs_unit()).to("Ry").magnitude
    return {
        element: (values["cutoff_wfc"] * to_ry, values["cutoff_rho"] * to_ry)
        for element, values in family.get_cutoffs().items()
    }


def _describe(family: PseudoPotentialFamily, elements: list[str], reason: str) -> PseudoFamilyChoice:
    """Check the family (cutoffs, elements, one functional) and describe it for the full config."""
    if not isinstance(family, RecommendedCutoffMixin) or not family.get_cutoff_stringencies():
        raise InputError(
            PSEUDO_FIELD,
            f"family {family.label} recommends no cutoffs",
            f"set them with `aiida-pseudo family cutoffs set {family.label} FILE -s normal -u Ry`",
        )
    require_elements(family.label, family.elements, elements)
    choice = PseudoFamilyChoice(
        label=family.label,
        source=family.base.extras.get(EXTRA_SOURCE, f"{family.label} installed in this AiiDA profile"),
        reason=reason,
        functional=_functional(family, elements),
        cutoffs=_cutoffs_in_ry(family),
    )
    if elements:
        choice.cutoffs_ry(elements)
    return choice


def _offline_reason(skipped_sssp: list[str], elements: list[str]) -> str:
    why_not_sssp = (
        f"the installed {', '.join(skipped_sssp)} lack some of {', '.join(elements)}"
        if skipped_sssp
        else "no SSSP family is installed in this profile (SSSP cannot be downloaded offline)"
    )
    return (
        f"{why_not_sssp}, so the offline PseudoDojo 0.4 PBE scalar-relativistic set is used: one functional "
        "for all its elements and PseudoDojo's own cutoff hints"
    )


def _preferred_reason(label: str) -> str:
    return f"{label} is named in the configuration ({PSEUDO_FIELD})"


def find_pseudo_family(
    preferred: str | None = None, elements: list[str] | None = None
) -> PseudoFamilyChoice | None:
    """The family that :func:`ensure_pseudo_family` would choose, if it is installed already; else None.

    Read-only: installs nothing, so it can describe a profile before set-up has run.
    """
    elements = sorted(set(elements or []))
    if preferred:
        family = _installed_family(preferred)
        return None if family is None else _describe(family, elements, _preferred_reason(preferred))
    skipped = []
    for family in _sssp_candidates():
        if set(elements) <= set(family.elements):
            reason = f"{family.label} is installed in this profile and SSSP is the verified standard for pw.x"
            return _describe(family, elements, reason)
        skipped.append(family.label)
    family = _installed_family(PSEUDODOJO_PBE_SR.label)
    return None if family is None else _describe(family, elements, _offline_reason(skipped, elements))


def ensure_pseudo_family(
    elements: list[str] | None = None,
    preferred: str | None = None,
    pseudo_dir: Path | str | None = None,
    user_cutoffs: tuple[float, float] | None = None,
) -> PseudoFamilyChoice:
    """Select, install if needed, and validate the pseudopotential family for ``elements``.

    ``user_cutoffs`` (ecutwfc, ecutrho in Ry) serve the files of ``pseudo_dir`` that suggest no cutoff.
    Idempotent: a family installed by an earlier call is found by its label and reused. Needs a loaded
    profile.
    """
    elements = sorted(set(elements or []))
    if preferred:
        if _installed_family(preferred) is None:
            if preferred not in OFFLINE_SPECS:
                fix = (
                    f"install it (SSSP: `{SSSP_INSTALL_HINT}`) or leave {PSEUDO_FIELD} out to let setup pick"
                )
                raise InputError(PSEUDO_FIELD, f"family {preferred} is not installed in this profile", fix)
            _install(provision_offline_family(OFFLINE_SPECS[preferred]))
        return find_pseudo_family(preferred, elements)

    if pseudo_dir is not None:
        staging = pseudo_cache_dir() / "local"
        staging.mkdir(parents=True, exist_ok=True)
        family = _install(family_from_directory(pseudo_dir, staging, user_cutoffs))
        reason = (
            f"built from the UPF files in dft_compute.pseudo_dir ({pseudo_dir}), as the configuration asks"
        )
        return _describe(family, elements, reason)

    choice = find_pseudo_family(None, elements)
    if choice is not None:
        return choice
    _install(provision_offline_family(PSEUDODOJO_PBE_SR))
    return find_pseudo_family(None, elements)
