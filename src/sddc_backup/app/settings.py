"""The service's settings: defaults, overridden by a TOML file, overridden by the environment.

Environment variables are the field names in upper case with the ``SDDC_BACKUP_`` prefix
(``data_dir`` -> ``SDDC_BACKUP_DATA_DIR``); the TOML file uses the field names as keys. Every setting is
documented in docs/configuration.md.
"""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from sddc_backup.domain.errors import InvalidInputError
from sddc_backup.domain.passphrase import PassphrasePolicy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SDDC_BACKUP_", extra="forbid")

    data_dir: Path = Path("./.sddc-backup")
    host: str = "127.0.0.1"
    port: int = Field(8443, ge=1, le=65535)
    admin_password: SecretStr | None = None
    fqdn: str = Field(default_factory=socket.getfqdn)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    database_url: str | None = None
    access_token_ttl_seconds: int = Field(3600, ge=60)
    refresh_token_ttl_seconds: int = Field(86400, ge=60)
    login_max_failures: int = Field(5, ge=1)
    login_lockout_seconds: int = Field(60, ge=1)
    passphrase_min_length: int = Field(12, ge=1)
    passphrase_require_upper: bool = True
    passphrase_require_lower: bool = True
    passphrase_require_digit: bool = True
    passphrase_require_special: bool = True
    paths: list[Path] = Field(default_factory=list)
    postgres_dsn: SecretStr | None = None
    sqlite_paths: list[Path] = Field(default_factory=list)
    sftp_client_keys: list[Path] = Field(default_factory=list)
    archive_compression_level: int = Field(1, ge=0, le=3)
    restore_dirs: list[Path] | None = None
    services_stop: str | None = None
    services_start: str | None = None
    services_check: str | None = None
    services_timeout_seconds: float = Field(300.0, gt=0)
    state_change_delay_seconds: float = Field(5.0, ge=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    faults: str = ""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the TOML file, which arrives as init arguments.
        return (env_settings, init_settings)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def state_store_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'state.db').resolve()}"

    @property
    def allowed_restore_dirs(self) -> list[Path]:
        """Where ``backupFile`` paths may point: ``/tmp`` (VCF's way) and ``<data dir>/restore``."""
        if self.restore_dirs is not None:
            return self.restore_dirs
        return [Path("/tmp"), self.data_dir.resolve() / "restore"]  # noqa: S108 - where VCF copies backups

    @property
    def passphrase_policy(self) -> PassphrasePolicy:
        return PassphrasePolicy(
            min_length=self.passphrase_min_length,
            require_upper=self.passphrase_require_upper,
            require_lower=self.passphrase_require_lower,
            require_digit=self.passphrase_require_digit,
            require_special=self.passphrase_require_special,
        )


def load_settings(config_file: Path | None = None) -> Settings:
    """Settings from ``config_file`` (TOML) and the environment; raises ``InvalidInputError`` naming the
    setting that is wrong."""
    data: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInputError(
                f"The configuration file {config_file} cannot be read: {exc}",
                error_code="INVALID_SETTING",
                remediation="Fix the file (TOML, keys as in docs/configuration.md), or leave out --config.",
            ) from exc
    try:
        return Settings(**data)
    except SettingsError as exc:
        raise InvalidInputError(
            f"The settings are not valid: {exc}",
            error_code="INVALID_SETTING",
            remediation="List settings such as SDDC_BACKUP_PATHS are JSON: '[\"/etc/app\"]'.",
        ) from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise InvalidInputError(
            f"The settings are not valid: {problems}",
            error_code="INVALID_SETTING",
            remediation="Correct the named settings (docs/configuration.md lists them all).",
        ) from exc
