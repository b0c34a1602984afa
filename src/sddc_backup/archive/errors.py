"""What can be wrong with an archive, each with its own stable code.

ArchiveError                      400  (an archive is input: the operator can act on it)
├── WrongPassphraseError          the passphrase does not open this archive
├── CorruptArchiveError           truncated, bad padding, bad gzip CRC or length, broken tar
├── ManifestMismatchError         a member differs from the manifest, or is missing from it
└── UnsafeMemberError             a member that extraction refuses (paths, links, devices, size)
ExtractionFailedError        500  the scratch directory could not take a member (space, names)
ComponentFailedError         500  a component failed while the archive was being written
"""

from __future__ import annotations

from sddc_backup.domain.errors import InvalidInputError, SddcBackupError


class ArchiveError(InvalidInputError):
    error_code = "ARCHIVE_INVALID"
    remediation = "Check that this is a backup file made by sddc-backup or SDDC Manager, and intact."


class WrongPassphraseError(ArchiveError):
    error_code = "ARCHIVE_WRONG_PASSPHRASE"
    remediation = "Use the passphrase that was configured when the backup was taken."


class CorruptArchiveError(ArchiveError):
    error_code = "ARCHIVE_CORRUPT"
    remediation = (
        "The file is damaged or incomplete. Check it against its .sha256 sidecar "
        "(sha256sum -c FILE.sha256), copy it again, or use another backup."
    )


class ManifestMismatchError(ArchiveError):
    error_code = "ARCHIVE_MANIFEST_MISMATCH"
    remediation = "The archive was changed after it was written. Use another backup."


class UnsafeMemberError(ArchiveError):
    error_code = "ARCHIVE_UNSAFE_MEMBER"
    remediation = "The archive holds a member that could write outside its folder. Do not use it."


class ExtractionFailedError(SddcBackupError):
    error_code = "ARCHIVE_EXTRACTION_FAILED"
    http_status = 500
    remediation = "Check the free space and permissions of the directory the archive is extracted into."


class ComponentFailedError(SddcBackupError):
    error_code = "BACKUP_COMPONENT_FAILED"
    http_status = 500
    remediation = "Fix the component named in the message (see the service log), then back up again."
