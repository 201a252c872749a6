"""Generates the pydantic parity cases: for each pydantic v2 model below, the JSON
Schema that model_json_schema() produces and a list of JSON documents, each labelled
with pydantic's own verdict (model_validate_json in strict mode). ember must give the
same verdict on every document.

    python tests/schema/make_pydantic_cases.py OUT_FILE

The models use strict mode because JSON Schema has no lax coercion ("3" is not an
integer). Documents where pydantic's semantics differ from JSON Schema's by design
are left out and listed in docs/schema.md (duplicate keys, 3.0 for an integer, NaN).
"""

import enum
import json
import os
import sys
from typing import List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, conint, constr


class Plan(str, enum.Enum):
    basic = "basic"
    pro = "pro"
    enterprise = "enterprise"


class Address(BaseModel):
    model_config = ConfigDict(strict=True)
    city: str = Field(min_length=1, max_length=40)
    zip: constr(pattern=r"^[0-9]{5}$")


class Customer(BaseModel):
    model_config = ConfigDict(strict=True)
    age: conint(ge=0, le=120)
    income: Optional[float] = None
    plan: Plan
    active: bool
    address: Address
    tags: List[str] = Field(default_factory=list, max_length=3)
    score: float = Field(default=0.5, gt=0, le=1)


class Event(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    kind: Literal["click", "view"]
    count: conint(multiple_of=5, ge=0)
    note: Optional[constr(min_length=2)] = None
    weights: List[float] = Field(min_length=1)
    level: Literal[1, 2, 3] = 1


class Item(BaseModel):
    model_config = ConfigDict(strict=True)
    sku: str
    qty: int = Field(ge=1)


class Order(BaseModel):
    model_config = ConfigDict(strict=True)
    id: int
    items: List[Item]
    shipping: Optional[Address] = None
    priority: Optional[Plan] = None


ADDRESS = {"city": "Oslo", "zip": "01234"}
CUSTOMER = {"age": 41, "plan": "pro", "active": True, "address": ADDRESS}


def variants(base, changes):
    out = []
    for change in changes:
        doc = dict(base)
        for key, value in change.items():
            if value is ...:
                doc.pop(key, None)
            else:
                doc[key] = value
        out.append(doc)
    return out


CASES = {
    "Customer": (Customer, [CUSTOMER] + variants(CUSTOMER, [
        {"age": 0}, {"age": 120}, {"age": 121}, {"age": -1}, {"age": "41"}, {"age": 41.5}, {"age": None},
        {"age": ...}, {"income": None}, {"income": 12.5}, {"income": 12}, {"income": "12"},
        {"plan": "basic"}, {"plan": "gold"}, {"plan": 1}, {"plan": ...},
        {"active": False}, {"active": 1}, {"active": "true"},
        {"address": {"city": "Rome", "zip": "00100"}}, {"address": {"city": "", "zip": "00100"}},
        {"address": {"city": "Rome", "zip": "0010"}}, {"address": {"city": "Rome", "zip": 100}},
        {"address": {"city": "Rome"}}, {"address": "Rome"}, {"address": None},
        {"address": {"city": "x" * 41, "zip": "00100"}}, {"address": {"city": "\u00e9" * 40, "zip": "00100"}},
        {"tags": []}, {"tags": ["a", "b", "c"]}, {"tags": ["a", "b", "c", "d"]}, {"tags": [1]}, {"tags": "a"},
        {"score": 1}, {"score": 0}, {"score": 0.0001}, {"score": 1.5}, {"extra": "ignored"},
    ])),
    "Event": (Event, variants({"kind": "click", "count": 10, "weights": [0.5]}, [
        {}, {"kind": "view"}, {"kind": "scroll"}, {"count": 0}, {"count": 7}, {"count": -5}, {"count": 25},
        {"note": "ok"}, {"note": "x"}, {"note": None}, {"weights": []}, {"weights": [1, 2.5]}, {"weights": ["1"]},
        {"level": 2}, {"level": 4}, {"level": "1"}, {"other": 1}, {"kind": ...},
    ])),
    "Order": (Order, variants({"id": 7, "items": [{"sku": "a", "qty": 1}]}, [
        {}, {"items": []}, {"items": [{"sku": "a", "qty": 0}]}, {"items": [{"sku": "a"}]},
        {"items": [{"sku": "a", "qty": 2}, {"sku": 3, "qty": 1}]}, {"items": {"sku": "a", "qty": 1}},
        {"shipping": ADDRESS}, {"shipping": None}, {"shipping": {"city": "x", "zip": "1"}},
        {"priority": "enterprise"}, {"priority": None}, {"priority": "urgent"}, {"id": "7"}, {"id": ...},
    ])),
}


def verdict(model, text):
    try:
        model.model_validate_json(text)
        return True
    except ValidationError:
        return False


def main(out_file):
    os.makedirs(os.path.dirname(os.path.abspath(out_file)), exist_ok=True)
    suites = []
    for name, (model, docs) in CASES.items():
        cases = []
        for doc in docs:
            text = json.dumps(doc, ensure_ascii=False)
            cases.append({"doc": text, "valid": verdict(model, text)})
        suites.append({"name": name, "schema": model.model_json_schema(), "cases": cases})
    with open(out_file, "w", encoding="utf-8") as f:
        json.dump(suites, f, ensure_ascii=False, indent=1)
    total = sum(len(s["cases"]) for s in suites)
    valid = sum(c["valid"] for s in suites for c in s["cases"])
    print(f"{total} pydantic cases ({valid} valid) written to {out_file}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
