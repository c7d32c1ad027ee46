"""Kubernetes' rules for what a pod spec holds: environment variable names and images.

The API server takes a pod whose image is ``Foo Bar:1`` and the kubelet then fails to pull
it; a bad variable name fails the pod's creation. Both are found here before rendering.
"""

from __future__ import annotations

import re

#: Kubernetes' rule for an environment variable name (``validation.IsEnvVarName``).
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
#: An image reference, by the grammar of the container registries (distribution's
#: ``reference``): ``[host[:port]/]path[:tag][@algorithm:hex]``, its path lower-case.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE = re.compile(rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?$")
MAX_IMAGE = 255


def env_name_problem(name: str) -> str | None:
    """Why Kubernetes refuses ``name`` as an environment variable name, or None."""
    if not ENV_NAME.match(name):
        return (
            f"'{name}' is not a valid environment variable name for Kubernetes: it must start "
            "with a letter, '_', '-' or '.', and hold only letters, digits, '_', '-' and '.'"
        )
    if name in {".", ".."} or name.startswith(".."):
        return (
            f"'{name}' is not a valid environment variable name for Kubernetes: '.', '..' or a leading '..'"
        )
    return None


def image_problem(image: str) -> str | None:
    """Why ``image`` is not an image reference a kubelet can pull, or None."""
    if not image.strip():
        return "the image is empty"
    if len(image) > MAX_IMAGE:
        return f"the image reference is {len(image)} characters long, over {MAX_IMAGE}"
    if IMAGE.match(image):
        return None
    if any(c.isspace() for c in image):
        why = "it holds white space"
    elif any(c.isupper() for c in image.split("@")[0].rsplit(":", 1)[0].split("/", 1)[-1]):
        why = "its repository path must be lower-case"
    else:
        why = "expected [registry[:port]/]name[:tag][@sha256:digest], e.g. ghcr.io/org/image:1.0"
    return f"'{image}' is not a valid image reference: {why}"


#: Kubernetes' quantity suffixes (resource.Quantity: binary, decimal and the small ones).
_SCALE = {
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
}  # fmt: skip
_QUANTITY = re.compile(
    r"^\+?(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE](?P<exp>[+-]?[0-9]+))?"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$"
)


def quantity(text: str) -> float | None:
    """A Kubernetes quantity (``512Mi``, ``250m``, ``1.5``, ``2e3``) as a number; None if it is
    not one (the API server says so itself)."""
    found = _QUANTITY.match(text.strip())
    if found is None:
        return None
    value = float(found["number"]) * 10.0 ** int(found["exp"] or 0)
    return value * _SCALE[found["suffix"]]
