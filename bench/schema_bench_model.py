"""The benchmark's record: a pydantic v2 model of 30 fields (numbers, integers, enums,
optional fields, strings, a boolean, one nested object), its JSON Schema, and 1,024
records of about 600 bytes each. Imported by run_schema_bench.py."""

import enum
import json
import random
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, constr


class Segment(str, enum.Enum):
    consumer = "consumer"
    small_business = "small_business"
    enterprise = "enterprise"


class Channel(str, enum.Enum):
    web = "web"
    mobile = "mobile"
    store = "store"
    phone = "phone"


class Address(BaseModel):
    model_config = ConfigDict(strict=True)
    city: str = Field(min_length=1, max_length=60)
    postcode: constr(pattern=r"^[0-9]{5}$")
    country: str = Field(default="NO", min_length=2, max_length=2)


NUMBERS = [f"x{i:02d}" for i in range(14)]
INTEGERS = [f"n{i}" for i in range(5)]


def _build():
    fields = {}
    annotations = {}
    for name in NUMBERS:
        annotations[name] = float
        fields[name] = Field(ge=-1e6, le=1e6)
    for name in INTEGERS:
        annotations[name] = int
        fields[name] = Field(ge=0, le=100000)
    annotations.update({"segment": Segment, "channel": Channel, "tier": Segment, "source": Channel})
    for name in ("opt_a", "opt_b", "opt_c"):
        annotations[name] = Optional[float]
        fields[name] = None
    annotations.update({"name": str, "email": str, "active": bool, "address": Address})
    fields["name"] = Field(min_length=1, max_length=80)
    fields["email"] = Field(pattern=r"^[^@]+@[^@]+$")
    namespace = {"__annotations__": annotations, "model_config": ConfigDict(strict=True), **fields}
    return type("Record", (BaseModel,), namespace)


Record = _build()


def schema():
    return Record.model_json_schema()


def records(n=1024, seed=3):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        doc = {name: round(rng.uniform(-1000, 1000), 4) for name in NUMBERS}
        doc.update({name: rng.randrange(0, 100000) for name in INTEGERS})
        doc.update({
            "segment": rng.choice(list(Segment)).value, "channel": rng.choice(list(Channel)).value,
            "tier": rng.choice(list(Segment)).value, "source": rng.choice(list(Channel)).value,
            "opt_a": None if i % 3 == 0 else round(rng.random(), 5), "opt_b": round(rng.random(), 5),
            "opt_c": None, "name": f"customer {i:05d}", "email": f"user{i}@example.com", "active": i % 2 == 0,
            "address": {"city": rng.choice(["Oslo", "Bergen", "Trondheim"]), "postcode": f"{rng.randrange(100000):05d}",
                        "country": "NO"},
        })
        out.append(json.dumps(doc, separators=(", ", ": ")))
    return out
