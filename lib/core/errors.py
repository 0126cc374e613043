"""Lens' one family of errors: each says what is wrong and, in `hint`, what to do.

Pages show any `LensError` with `lib.ui.show_error`; the command lines print it as one line
and exit with status 2 (`lib.core.command_line.command`). Messages never reveal whether a
path outside the allowed roots exists, and never contain secrets.
"""

from __future__ import annotations


class LensError(Exception):
    """Base of every error a user can act on. `str()` is the message plus the hint."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message, self.hint = message, hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


# -- input a user gave (uploads, typed paths, files read on their behalf) --------------------

class InputError(LensError, ValueError):
    """Input that cannot be used as given."""


class PathNotAllowedError(InputError):
    """A typed path outside the allowed roots, or not the kind of thing expected there."""


class ArchiveError(InputError):
    """An uploaded archive that cannot be unpacked safely."""


class DatasetError(InputError):
    """A dataset, folder or predictions file that cannot be used."""


class ImageError(InputError):
    """An input that is not a usable image."""


class VideoError(InputError):
    """An input that is not a usable video."""


class PromptError(InputError):
    """A segmentation prompt that cannot be used."""


class CheckpointError(InputError):
    """A checkpoint folder or weights file that cannot be used."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle that would execute code on load."""


class RunReadError(InputError):
    """A W&B run (or a source of runs) that cannot be read."""


class CloudError(LensError):
    """The W&B cloud refused or failed a request (bad key, no access, rate limit, outage)."""


class SettingError(InputError):
    """A `LENS_*` variable whose value cannot be used."""


class ExplainError(InputError):
    """A CAM that cannot be made as asked (unknown method or layer, no layer to explain)."""


# -- models -----------------------------------------------------------------------------------

class ModelError(LensError, RuntimeError):
    """A model that cannot be loaded or run."""


class ModelCreateError(ModelError):
    """Unknown name or architecture, wrong shapes, broken checkpoint."""


class WeightsMissingError(ModelError):
    """Real weights are not on this machine; the message names the fetch command."""

    @classmethod
    def for_model(cls, name: str, fetch_command: str, detail: str = "") -> WeightsMissingError:
        """The message for model `name`, whose weights `fetch_command` fetches."""
        return cls(f"Weights for '{name}' are not on this machine and could not be downloaded"
                   f"{' (' + detail + ')' if detail else ''}.",
                   f"On a connected machine run:  {fetch_command}  then copy the caches "
                   "(~/.cache/huggingface, ~/.cache/torch) here.")


class ModelTooLargeError(ModelError):
    """A model (or other cached state) larger than the whole memory budget."""
