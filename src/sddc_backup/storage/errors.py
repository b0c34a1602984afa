"""The closed hierarchy of storage errors. Each has a stable code and says whether a retry may help.

StorageError
├── InvalidObjectNameError        a name with '/', '..', NUL, or a temporary-looking name
├── ObjectNotFoundError           no such object
├── LocationNotFoundError         the backup directory does not exist
├── LocationNotWritableError      the backup directory cannot be written
├── LocationFullError             no space left
├── IntegrityError                what was stored is not what was sent
├── HostUnreachableError      *   the server cannot be reached
├── ConnectionLostError       *   the connection dropped
├── StorageTimeoutError       *   an operation took too long
├── HostKeyMismatchError          the server's key is not the pinned one
├── HostKeyTypeNotOfferedError    the server has no key of the pinned key's type
├── FingerprintRequiredError      no fingerprint configured: we never connect blindly
└── LoginFailedError              the server refused the credentials
(* transient: the retry wrapper tries again)
"""

from __future__ import annotations

from sddc_backup.domain.errors import SddcBackupError


class StorageError(SddcBackupError):
    error_code = "STORAGE_ERROR"
    http_status = 400
    transient = False
    remediation = "Check the backup location and try again."


class InvalidObjectNameError(StorageError):
    error_code = "STORAGE_INVALID_NAME"
    remediation = "Use a plain file name without '/', '..' or NUL bytes."


class ObjectNotFoundError(StorageError):
    error_code = "BACKUP_FILE_NOT_FOUND"
    http_status = 404
    remediation = "List the backups (GET /v1/backups) and use one of the names shown."


class LocationNotFoundError(StorageError):
    error_code = "BACKUP_DIRECTORY_NOT_FOUND"
    remediation = "Create the directory on the backup server (or fix directoryPath), then try again."


class LocationNotWritableError(StorageError):
    error_code = "BACKUP_DIRECTORY_NOT_WRITABLE"
    remediation = "Give the backup user write permission on the directory, then try again."


class LocationFullError(StorageError):
    error_code = "BACKUP_LOCATION_FULL"
    remediation = "Free space on the backup server, or lower the retention, then try again."


class IntegrityError(StorageError):
    error_code = "BACKUP_UPLOAD_CORRUPTED"
    remediation = "The stored copy differs from what was sent. Check the backup server's storage."


class HostUnreachableError(StorageError):
    error_code = "SFTP_HOST_UNREACHABLE"
    transient = True
    remediation = "Check the server name, the port, the network path and the firewall."


class ConnectionLostError(StorageError):
    error_code = "STORAGE_CONNECTION_LOST"
    transient = True
    remediation = "The connection dropped. Check the network and the server, then try again."


class StorageTimeoutError(StorageError):
    error_code = "STORAGE_TIMEOUT"
    transient = True
    remediation = "The server did not answer in time. Check its load and the network."


class HostKeyMismatchError(StorageError):
    error_code = "SSH_FINGERPRINT_MISMATCH"
    remediation = (
        "The server's host key is not the one pinned by sshFingerprint. If the key was changed on "
        "purpose, confirm the new fingerprint with the server's administrator and configure it; "
        "otherwise do not connect: someone may be impersonating the server."
    )


class HostKeyTypeNotOfferedError(StorageError):
    error_code = "SSH_HOST_KEY_TYPE_NOT_OFFERED"
    remediation = (
        "The server offers no host key of the pinned fingerprint's type. Configure the fingerprint "
        "of a key type the server has (ECDSA, Ed25519 or RSA), or add that key type to the server."
    )


class FingerprintRequiredError(StorageError):
    error_code = "SSH_FINGERPRINT_REQUIRED"
    remediation = "Confirm the server's fingerprint shown in this message and set it as sshFingerprint."


class LoginFailedError(StorageError):
    error_code = "SFTP_LOGIN_FAILED"
    remediation = "Check the user name and the password (or key) for the backup server."
