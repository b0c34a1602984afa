"""Token and service models."""

from __future__ import annotations

from sddc_backup.api.schemas.base import VcfModel
from sddc_backup.api.schemas.tasks import PageMetadata


class TokenCreationSpec(VcfModel):
    username: str
    password: str


class RefreshToken(VcfModel):
    id: str


class TokenPair(VcfModel):
    """``accessToken`` must stay the first field: operators extract it with awk -F '"' '{print $4}'."""

    access_token: str
    refresh_token: RefreshToken


class VcfService(VcfModel):
    id: str
    name: str
    version: str
    status: str


class PageOfVcfService(VcfModel):
    elements: list[VcfService]
    page_metadata: PageMetadata
