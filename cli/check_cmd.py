"""``recs check``: every file of a model or index directory against the sizes and hashes it recorded."""

from __future__ import annotations

from pathlib import Path

import click

from recs.artifacts import MANIFEST, verify_artifact
from recs.cli.options import quiet_option
from recs.cli.render import console, table
from recs.errors import ArtifactError
from recs.progress import TqdmProgress

COLUMNS = ["file", "bytes", "recorded_bytes", "status"]


@click.command("check")
@click.argument("directory", type=click.Path(path_type=Path))
@quiet_option
def check_cmd(directory: Path, quiet: bool) -> None:
    """Verify a model or index directory byte for byte against its manifest.

    Every file's size and blake2b hash are compared with those recorded in manifest.json when the
    artifact was written. Readers compare sizes on every load; this reads every byte, so run it after
    copying artifacts between machines or when a result looks wrong. Exits with 2 and an Error line
    if a file is changed or missing, and also when the manifest records no files (an artifact
    from an older recs, or a record removed): then nothing could be verified.

    \b
    Example:
      recs check runs/model
      recs check runs/index
    """
    with TqdmProgress(not quiet).stage("verifying") as bar:  # reads every byte: minutes for a large index
        report = verify_artifact(directory)
        bar.update(len(report["files"]))
    title = f"{directory} ({report['format']} version {report['format_version']})"
    console.print(table(title, report["files"], COLUMNS))  # a size not recorded or not there shows as "-"
    if not report["recorded"]:
        # nothing to compare is not a pass: a stripped record must not read as a verified artifact
        raise ArtifactError(f"{directory}: {MANIFEST} has no 'files' record (written by an older recs, or "
                            "removed): nothing can be verified; rebuild it with this recs to record its files")
    bad = [r for r in report["files"] if r["status"] not in ("ok", "not recorded")]
    if bad:
        raise ArtifactError(f"{directory}: {len(bad)} file(s) differ from what {MANIFEST} recorded: "
                            + ", ".join(f"{r['file']} ({r['status']})" for r in bad)
                            + "; the artifact was changed after it was written: rebuild it")


COMMANDS = [check_cmd]
