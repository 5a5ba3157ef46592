"""``recs check``: every file of a model or index directory against the sizes and hashes it recorded."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import click

from recs.artifacts import MANIFEST, verify_artifact
from recs.cli.options import index_uri_conf_option, quiet_option
from recs.cli.render import console, table
from recs.config import parse_spark_conf
from recs.errors import ArtifactError, ConfigError
from recs.progress import TqdmProgress

COLUMNS = ["file", "bytes", "recorded_bytes", "status"]


@click.command("check")
@click.argument("directory", type=click.Path(path_type=str))
@index_uri_conf_option
@quiet_option
def check_cmd(directory: str, spark_conf: tuple[str, ...], quiet: bool) -> None:
    """Verify a model or index directory byte for byte against its manifest.

    Every file's size and blake2b hash are compared with those recorded in manifest.json when the
    artifact was written. Readers compare sizes on every load; this reads every byte, so run it after
    copying artifacts between machines or when a result looks wrong. Exits with 2 and an Error line
    if a file is changed or missing, and also when the manifest records no files (an artifact
    from an older recs, or a record removed): then nothing could be verified.

    DIRECTORY may be the URI of an index build-index --engine spark --out URI committed: every file its
    manifest names is copied down through Spark's Hadoop client and compared with the size (and for
    faiss files the hash) recorded there, each part's columns checked, then the copy verified.

    \b
    Example:
      recs check runs/model
      recs check runs/index
      recs check s3a://shop-indexes/ours/ --spark-conf spark.hadoop.fs.s3a.endpoint=http://minio:9000
    """
    from recs.spark.uri import is_uri

    conf = parse_spark_conf(spark_conf)
    if spark_conf and not is_uri(directory):
        raise ConfigError("--spark-conf is for a DIRECTORY given as a URI (read through Spark's Hadoop client)")
    with ExitStack() as stack:
        local = Path(directory)
        if is_uri(directory):
            from recs.spark.fetch import local_index

            with TqdmProgress(not quiet).stage("copying down"):
                local = stack.enter_context(local_index(directory, conf))
        with TqdmProgress(not quiet).stage("verifying") as bar:  # reads every byte: minutes for a large index
            report = verify_artifact(local)
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
