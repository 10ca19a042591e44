"""Typed configuration loaded from `snowcoder.toml` (or the file `SNOWCODER_CONFIG` names).

Every relative path in the file resolves against the file's own folder, so a configuration
means the same thing from any working directory. A bad file fails here, before any work,
with a message naming the file, the key and what was expected.
"""

from __future__ import annotations

import glob
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator

from snowcoder_assets.evaluation.settings import EvaluationConfig
from snowcoder_assets.orchestration.kubernetes import KubernetesConfig
from snowcoder_assets.phase1.decontaminate import DecontaminationConfig
from snowcoder_assets.phase1.filters import FilterPolicy
from snowcoder_assets.phase1.minhash import MinhashConfig
from snowcoder_assets.phase2.annotator import AnnotatorConfig
from snowcoder_assets.phase2.scoring import ScoringConfig
from snowcoder_assets.phase2.topk import TopkConfig
from snowcoder_assets.phase2.training_set import AnnotatorDataConfig
from snowcoder_assets.phase3.settings import SyntheticConfig
from snowcoder_assets.storage import DATA_DIR_ENV_VAR, DataPath, data_path, is_url
from snowcoder_assets.strict import StrictModel
from snowcoder_assets.tokens.manifest import TrainingConfig
from snowcoder_assets.tokens.tokenizer import TokenizerConfig

CONFIG_ENV_VAR = "SNOWCODER_CONFIG"
DEFAULT_CONFIG_NAME = "snowcoder.toml"
SOURCE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"


class ConfigError(ValueError):
    """A configuration file that cannot be used, with the file and key in the message."""


class PathsConfig(StrictModel):
    # A folder, or an fsspec URL (s3://bucket/prefix, gs://..., hf://datasets/...); the
    # SNOWCODER_DATA_DIR environment variable overrides it (cluster pods set it).
    data_dir: str = "data"


class IngestConfig(StrictModel):
    """How raw files are read and grouped into shards (the `raw_files` partitions)."""

    # The Stack v1 drops files over 1 MB; larger files are recorded, never read.
    max_file_bytes: int = Field(default=1_000_000, gt=0)
    # Shards pack whole repositories (or input files) up to these bounds; a tabular file over
    # them is cut into runs of parquet row groups or jsonl line ranges (sources/tabular.py).
    shard_max_bytes: int = Field(default=64_000_000, gt=0)
    shard_max_files: int = Field(default=20_000, gt=0)
    # Include list of languages (names from snowcoder_assets/languages.py); empty = all known.
    languages: list[str] = Field(default_factory=list)
    # Tried after UTF-8 (with or without BOM) and UTF-16 with a BOM; strict, so bytes it does
    # not define still make the file `undecodable`.
    fallback_encoding: str = "cp1252"

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str]) -> list[str]:
        from snowcoder_assets.languages import LANGUAGES

        unknown = sorted(set(value) - set(LANGUAGES))
        if unknown:
            raise ValueError(f"unknown language(s) {unknown}; known: {sorted(LANGUAGES)}")
        return value

    @field_validator("fallback_encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r}") from exc
        return value


class _SourceBase(StrictModel):
    name: Annotated[str, Field(pattern=SOURCE_NAME_PATTERN)]


class LocalDirSourceConfig(_SourceBase):
    """A folder whose immediate subfolders are repositories."""

    kind: Literal["local_dir"]
    path: Path


class GitSourceConfig(_SourceBase):
    """A git repository, or a folder of them; files tracked at HEAD."""

    kind: Literal["git"]
    path: Path


class _TabularColumns(StrictModel):
    """Column names of The Stack v1; override for other datasets."""

    content_column: str = "content"
    repo_column: str = "max_stars_repo_name"
    path_column: str = "max_stars_repo_path"
    lang_column: str = "lang"
    stars_column: str = "max_stars_count"
    licenses_column: str = "max_stars_repo_licenses"


class ParquetSourceConfig(_SourceBase, _TabularColumns):
    """Parquet files (a path or a glob) with The Stack v1 columns; a shard per file, or per run
    of row groups when a file exceeds the shard bounds."""

    kind: Literal["parquet"]
    path: str


class JsonlSourceConfig(_SourceBase, _TabularColumns):
    """JSON-lines files (a path or a glob, `.gz` allowed) with The Stack v1 columns."""

    kind: Literal["jsonl"]
    path: str


class HfDatasetSourceConfig(_SourceBase, _TabularColumns):
    """A `datasets` dataset by Hub id or local path, read streaming; one shard per data shard."""

    kind: Literal["hf_dataset"]
    path: str
    config_name: str | None = None
    split: str = "train"
    revision: str | None = None
    data_dir: str | None = None


class PythonInstallSourceConfig(_SourceBase):
    """The running interpreter's standard library and site-packages, read in place."""

    kind: Literal["python_install"]
    stdlib: bool = True
    # "*" = every installed distribution; else top-level package/module names to include.
    site_packages: Literal["*"] | list[str] = "*"
    # Top-level names to leave out (stdlib or site-packages).
    exclude: list[str] = Field(default_factory=list)


class DedupConfig(StrictModel):
    """Exact dedup on the normalized content hash, then MinHash LSH near dedup."""

    exact: bool = True
    near: bool = True
    minhash: MinhashConfig = Field(default_factory=MinhashConfig)


class CorpusConfig(StrictModel):
    """How phase-1 documents are built (see snowcoder_assets/phase1/corpus.py)."""

    seed: int = 0  # the order of files inside a repository document
    max_document_bytes: int = Field(default=1_000_000, gt=0)  # longer repositories split


class OrchestrationConfig(StrictModel):
    """How work is cut into Dagster runs (the instance's dagster.yaml says how many run at once)."""

    # Per-file stages: at most this many partitions per run, for backfills launched from the UI
    # (BackfillPolicy.multi_run) and for `snowcoder materialize`, which also splits the work so
    # every run slot is busy. Dagster copies one data version to every partition of a batched
    # run (dagster-io/dagster#34013): 1 gives exact per-partition versions, more saves run start-up.
    partitions_per_run: int = Field(default=8, ge=1)
    # quality_scores loads the annotator once per run: score many partitions per run.
    gpu_partitions_per_run: int = Field(default=256, ge=1)
    # in_process: a run's steps one after another in the run's process (cheap start-up; runs
    # themselves run in parallel); multiprocess: a process per step.
    # k8s: a pod per step (dagster-k8s), sized by `[kubernetes]`; needs the K8sRunLauncher.
    executor: Literal["in_process", "multiprocess", "k8s"] = "in_process"


class HubConfig(StrictModel):
    """Where the hub assets publish. With no namespace they write a dry run instead."""

    namespace: str = ""  # e.g. "my-org": repositories <namespace>/snowcoder-<artifact>
    private: bool = False
    revision: str | None = None  # a branch; created when missing


SourceConfig = Annotated[
    LocalDirSourceConfig
    | GitSourceConfig
    | ParquetSourceConfig
    | JsonlSourceConfig
    | HfDatasetSourceConfig
    | PythonInstallSourceConfig,
    Field(discriminator="kind"),
]


class SnowcoderConfig(StrictModel):
    paths: PathsConfig = Field(default_factory=PathsConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    sources: list[SourceConfig] = Field(min_length=1)
    filters: FilterPolicy = Field(default_factory=FilterPolicy)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    decontamination: DecontaminationConfig = Field(default_factory=DecontaminationConfig)
    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    annotator_data: AnnotatorDataConfig = Field(default_factory=AnnotatorDataConfig)
    annotator: AnnotatorConfig = Field(default_factory=AnnotatorConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    topk: TopkConfig = Field(default_factory=TopkConfig)
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    orchestration: OrchestrationConfig = Field(default_factory=OrchestrationConfig)
    hub: HubConfig = Field(default_factory=HubConfig)
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)
    # Where the file was read from; set by load_config, not by the file.
    config_file: Path | None = None

    @property
    def data_dir(self) -> DataPath:
        """A `Path`, or a `UPath` when `[paths] data_dir` is an object-storage URL."""
        return data_path(self.paths.data_dir)

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(f"no source named {name!r} in {self.config_file}")


def default_config_path() -> Path:
    """SNOWCODER_CONFIG, else ./snowcoder.toml, else the project's own snowcoder.toml."""
    if os.environ.get(CONFIG_ENV_VAR):
        return Path(os.environ[CONFIG_ENV_VAR]).expanduser().resolve()
    cwd_file = Path.cwd() / DEFAULT_CONFIG_NAME
    if cwd_file.is_file():
        return cwd_file.resolve()
    return (project_root() / DEFAULT_CONFIG_NAME).resolve()


def project_root() -> Path:
    """The folder holding pyproject.toml for a source checkout; else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def load_config(path: str | os.PathLike[str] | None = None) -> SnowcoderConfig:
    """Read, validate and resolve a configuration file; raise ConfigError on any problem."""
    config_file = Path(path).expanduser().resolve() if path else default_config_path()
    if not config_file.is_file():
        raise ConfigError(f"{config_file}: configuration file not found")
    try:
        raw = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config_file}: not valid TOML: {exc}") from exc
    if "config_file" in raw:
        raise ConfigError(f"{config_file}: config_file: unknown key")
    try:
        config = SnowcoderConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(config_file, exc)) from exc
    config = _resolve_paths(config, config_file)
    _check_sources(config)
    return config


def _describe_validation_error(config_file: Path, exc: ValidationError) -> str:
    lines = [f"{config_file}: invalid configuration"]
    for error in exc.errors():
        key = _format_location(error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "union_tag_invalid":
            message = f"unknown kind {error['input'].get('kind')!r}; expected one of " + (
                "local_dir, git, parquet, jsonl, hf_dataset, python_install"
            )
        elif error["type"] == "missing":
            message = "missing required key"
        elif "input" in error and error["type"] not in ("union_tag_not_found",):
            message = f"{message} (got {error['input']!r})"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def _format_location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
        elif i > 0 and isinstance(loc[i - 1], int) and loc[0] == "sources" and i == 2:
            continue  # the discriminator tag pydantic inserts into the location
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def _resolve_paths(config: SnowcoderConfig, config_file: Path) -> SnowcoderConfig:
    base = config_file.parent
    sources = []
    for source in config.sources:
        if isinstance(source, LocalDirSourceConfig | GitSourceConfig):
            source = source.model_copy(update={"path": _resolve(base, source.path)})
        elif isinstance(source, ParquetSourceConfig | JsonlSourceConfig) or (
            isinstance(source, HfDatasetSourceConfig) and _looks_local(base, source.path)
        ):
            source = source.model_copy(update={"path": str(_resolve(base, Path(source.path)))})
        sources.append(source)
    paths = PathsConfig(data_dir=_resolve_data_dir(base, config.paths.data_dir))
    benchmarks = [
        b.model_copy(update={"path": _resolve(base, Path(b.path))})
        for b in config.decontamination.benchmarks
    ]
    decontamination = config.decontamination.model_copy(update={"benchmarks": benchmarks})
    return config.model_copy(
        update={
            "paths": paths,
            "sources": sources,
            "config_file": config_file,
            "decontamination": decontamination,
            "synthetic": _resolve_synthetic(base, config.synthetic),
            "evaluation": _resolve_evaluation(base, config.evaluation),
        }
    )


def _resolve_synthetic(base: Path, synthetic: SyntheticConfig) -> SyntheticConfig:
    """vLLM's interpreter (default: the checkout's .venv-vllm) and a local model folder."""
    python = synthetic.vllm_python
    python = _resolve(base, python) if python else project_root() / ".venv-vllm/bin/python"
    update: dict = {"vllm_python": python}
    if synthetic.backend == "vllm" and synthetic.model and _looks_local(base, synthetic.model):
        update["model"] = str(_resolve(base, Path(synthetic.model)))
    return synthetic.model_copy(update=update)


def _resolve_evaluation(base: Path, evaluation: EvaluationConfig) -> EvaluationConfig:
    benchmarks = [
        b.model_copy(update={"path": _resolve(base, b.path)}) for b in evaluation.benchmarks
    ]
    python = evaluation.vllm_python and _resolve(base, evaluation.vllm_python)
    return evaluation.model_copy(update={"benchmarks": benchmarks, "vllm_python": python})


def _resolve_data_dir(base: Path, spec: str) -> str:
    spec = os.environ.get(DATA_DIR_ENV_VAR) or spec
    if is_url(spec):
        return str(data_path(spec))
    return str(_resolve(base, data_path(spec)))


def _resolve(base: Path, path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _looks_local(base: Path, path: str) -> bool:
    return path.startswith((".", "/", "~")) or (base / path).exists()


def _check_sources(config: SnowcoderConfig) -> None:
    where = config.config_file
    for i, bench in enumerate(config.decontamination.benchmarks):
        if not Path(bench.path).is_file():
            raise ConfigError(
                f"{where}: decontamination.benchmarks[{i}].path: {bench.path} is not a file"
            )
    seen: set[str] = set()
    for i, source in enumerate(config.sources):
        key = f"sources[{i}]"
        if source.name in seen:
            raise ConfigError(f"{where}: {key}.name: duplicate source name {source.name!r}")
        seen.add(source.name)
        if isinstance(source, LocalDirSourceConfig) and not source.path.is_dir():
            raise ConfigError(f"{where}: {key}.path: {source.path} is not an existing folder")
        if isinstance(source, GitSourceConfig) and not source.path.is_dir():
            raise ConfigError(f"{where}: {key}.path: {source.path} is not an existing folder")
        if isinstance(source, ParquetSourceConfig | JsonlSourceConfig) and not glob.glob(
            source.path, recursive=True
        ):
            raise ConfigError(f"{where}: {key}.path: {source.path} matches no file")
        if (
            isinstance(source, HfDatasetSourceConfig)
            and source.path.startswith("/")
            and not Path(source.path).exists()
        ):
            raise ConfigError(f"{where}: {key}.path: {source.path} does not exist")


def partition_key(source: str, shard: str) -> str:
    """Dynamic partition key of one source shard: `<source>/<shard>`."""
    return f"{source}/{shard}"


def split_partition_key(key: str) -> tuple[str, str]:
    source, sep, shard = key.partition("/")
    if not sep or not re.match(SOURCE_NAME_PATTERN, source) or not shard:
        raise ValueError(f"partition key {key!r} is not of the form <source>/<shard>")
    return source, shard
