"""Parameters arrive by argument name, cast to the annotation (pydantic models included)."""

from pydantic import BaseModel


class Training(BaseModel):
    epochs: int
    learning_rate: float


def plan(training: Training, dataset: str) -> tuple[int, str]:
    # `training` arrives as a Training instance although the YAML holds a mapping.
    print(f"training on {dataset} for {training.epochs} epochs at {training.learning_rate}")
    return training.epochs * 10, dataset.upper()


def check(steps: int, label: str, report: str) -> dict[str, object]:
    return {"steps": steps, "label": label, "report": report}
