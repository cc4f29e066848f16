"""The raw-data schema: one JSON file shipped as package data so that Dataflow
workers validate against exactly the file the repository reviews."""
import dataclasses
import importlib.resources
import json


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    type: str  # "int" or "str"
    min: int | None = None
    max: int | None = None
    nullable: bool = False


def load_columns(name: str = "reviews.json") -> tuple[Column, ...]:
    text = importlib.resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    return tuple(Column(**column) for column in json.loads(text)["columns"])


REVIEW_COLUMNS = load_columns()
COLUMN_NAMES = tuple(column.name for column in REVIEW_COLUMNS)
