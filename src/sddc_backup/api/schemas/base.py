"""The base of every wire model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class VcfModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown request fields are ignored, as the SDK
    ignores unknown response fields."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")
