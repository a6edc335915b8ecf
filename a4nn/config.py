"""Run configuration: one YAML file, validated with pydantic before anything starts.

Every section has sane defaults so that a config may be as short as `name: mysearch`;
the embedded default (`a4nn/configs/quickstart.yaml`) is what the README's first command
runs. Validation errors name the file and the field at fault.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class XfelSpec(_Strict):
    """Simulated XFEL data generated on first use (cached under `cache_dir`)."""

    intensity: float = 1e15
    n_train: int = Field(800, ge=2)
    n_test: int = Field(200, ge=2)
    seed: int = 0
    pdb_files: tuple[Path, Path] | None = None


class DataConfig(_Strict):
    """Where the images come from and how they are split and normalized."""

    source: Literal["xfel", "folder", "npz"] = "xfel"
    path: Path | None = None
    xfel: XfelSpec = XfelSpec()
    cache_dir: Path = Path("data")
    label_map: dict[str, int] | None = None
    validation: Literal["testset", "split"] = "testset"
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    normalize: Literal["none", "per_image", "log1p", "dataset"] = "log1p"
    resize: int | None = Field(None, ge=4)

    @model_validator(mode="after")
    def _path_needed(self) -> DataConfig:
        if self.source in ("folder", "npz") and self.path is None:
            raise ValueError(f"data.path is required when data.source is '{self.source}'")
        return self


class TrainConfig(_Strict):
    """Optimizer and budget; the paper trains every model for 25 epochs."""

    epochs: int = Field(25, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(0.025, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(3e-4, ge=0.0)
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    device: str = "auto"
    threads: int | None = Field(None, ge=1)


class SearchConfig(_Strict):
    """The NAS adapter, the search space it searches, and each one's own options.

    `options` go to the adapter and `space_options` to the space; each validates its
    own (a bad option names its field). Which adapters and spaces exist: `a4nn.registry`.
    """

    adapter: str = "nsganet"
    space: str = "nsganet-macro"
    options: dict[str, Any] = Field(default_factory=dict)
    space_options: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _moved_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            moved = sorted(set(data) & set(_MOVED_SEARCH_FIELDS))
            if moved:
                hints = "; ".join(f"search.{k} -> {_MOVED_SEARCH_FIELDS[k]}" for k in moved)
                raise ValueError(
                    f"these search fields moved into the adapter's or the space's options: {hints}"
                )
        return data


_MOVED_SEARCH_FIELDS = {
    "preset": "search.options.preset",
    "pop_size": "search.options.pop_size",
    "n_offspring": "search.options.n_offspring",
    "n_generations": "search.options.n_generations",
    "phases": "search.space_options.phases",
    "nodes_per_phase": "search.space_options.nodes_per_phase",
    "channels": "search.space_options.channels",
}


class EngineSection(_Strict):
    """The prediction engine: a preset, optionally a YAML file, and overrides.

    `e_pred` defaults to the epoch budget (`train.epochs`): the paper predicts the
    fitness at its 25-epoch budget.
    """

    preset: str = "paper"
    config: Path | None = None

    @field_validator("preset", mode="before")
    @classmethod
    def _off_is_a_name(cls, v: Any) -> Any:
        return "off" if v is False else v  # YAML 1.1 reads a bare `off` as false

    e_pred: int | None = Field(None, ge=1)
    overrides: dict[str, Any] = Field(default_factory=dict)


class LineageConfig(_Strict):
    """What the run directory keeps."""

    checkpoints: Literal["every", "last_best", "none"] = "every"


_SLURM_GPU_OPTION = re.compile(
    r"^(--gres|--gpus|--gpus-per-node|--gpus-per-task|-G)(?:[= ]|(?<=-G))\s*(\S+)$"
)
_PBS_GPU = re.compile(r"(?:^|[:,\s])n?gpus=(\d+)")


def slurm_gpu_request(directives: list[str]) -> tuple[int, str] | None:
    """(GPUs per job, the directive) a SLURM `job_extra_directives` list asks for, if any:
    `--gres=gpu:4`, `--gres=gpu:a100:2`, `--gpus=4`, `--gpus-per-node=a100:4`, `-G 2`."""
    for d in directives:
        match = _SLURM_GPU_OPTION.match(d.strip())
        if match is None:
            continue
        option, value = match.groups()
        if option == "--gres":
            gpu = next((g for g in value.split(",") if g.startswith("gpu")), None)
            if gpu is None:
                continue
            parts = gpu.split(":")
            count = int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 1
        else:
            last = value.split(":")[-1]
            count = int(last) if last.isdigit() else 1
        return count, d.strip()
    return None


def pbs_gpu_request(resource_spec: str | None, directives: list[str]) -> tuple[int, str] | None:
    """(GPUs per job, where) a PBS `resource_spec` or `-l` directive asks for, if any."""
    for where, text in [("resource_spec", resource_spec or "")] + [
        ("job_extra_directives", d) for d in directives
    ]:
        match = _PBS_GPU.search(text)
        if match:
            return int(match.group(1)), f"{where} {text!r}"
    return None


def walltime_seconds(walltime: str) -> int:
    """SLURM/PBS walltime in seconds: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS."""
    text = str(walltime).strip()
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
        parts = [int(p) for p in text.split(":")]
        parts += [0] * (3 - len(parts))
        h, m, sec = parts
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:
            h, m, sec = 0, parts[0], 0
        elif len(parts) == 2:
            h, m, sec = 0, parts[0], parts[1]
        elif len(parts) == 3:
            h, m, sec = parts
        else:
            raise ValueError(walltime)
    return ((days * 24 + h) * 60 + m) * 60 + sec


def _seconds(duration: str) -> float:
    """A duration such as '90s', '45m', '11h', '1h30m', '2d' in seconds (Dask's units)."""
    text = str(duration).strip().replace(" ", "")
    parts = re.findall(r"(\d+(?:\.\d+)?)(d|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(duration)
    scale = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return sum(float(n) * scale[u] for n, u in parts)


def _duration(seconds: float) -> str:
    """Seconds as a Dask duration (`11h19m`, `90s`)."""
    seconds = int(seconds)
    if seconds % 60:
        return f"{seconds}s"
    h, m = divmod(seconds // 60, 60)
    return f"{h}h{m}m" if h and m else f"{h}h" if h else f"{m}m"


class JobqueueConfig(_Strict):
    """Batch-scheduler settings for `orchestration.cluster: slurm|pbs` (dask-jobqueue).

    One batch job holds `gpus_per_job` Dask workers, one per GPU; `jobs` jobs are kept
    running. The jobs' GPU request derives from `gpus_per_job` (SLURM `--gres=gpu:N`, PBS
    `ngpus=N` in the default `resource_spec`) unless `job_extra_directives` or
    `resource_spec` state one; a stated request for fewer GPUs than `gpus_per_job` is an
    error naming both fields. Workers retire `worker_lifetime` after they start (default:
    the walltime less a margin and the stagger), `lifetime_stagger` apart, and with
    `adapt` a retired job is replaced, so a search outlives any one job.
    """

    queue: str | None = None
    account: str | None = None
    walltime: str = "04:00:00"
    cores: int = Field(8, ge=1)
    memory: str = "32GB"
    gpus_per_job: int = Field(1, ge=1)
    jobs: int = Field(1, ge=1)
    resource_spec: str | None = None  # PBS `-l` select line, e.g. select=1:ncpus=4:ngpus=1
    job_extra_directives: list[str] = Field(default_factory=list)
    job_script_prologue: list[str] = Field(default_factory=list)
    interface: str | None = None
    local_directory: str | None = None
    log_directory: str | None = None
    share_gpus: bool = False  # allow several workers of a job on one GPU when it sees fewer
    worker_lifetime: str | None = None  # Dask duration, e.g. "11h"; None: derived; "off"
    lifetime_stagger: str | None = None  # Dask duration; None: derived
    adapt: bool = True  # replace jobs that end (walltime, node failure)

    @field_validator("walltime")
    @classmethod
    def _walltime_format(cls, v: str) -> str:
        try:
            if walltime_seconds(v) <= 0:
                raise ValueError(v)
        except ValueError:
            raise ValueError(
                f"walltime {v!r}: use HH:MM:SS (or D-HH:MM:SS, MM:SS, minutes)"
            ) from None
        return v

    @model_validator(mode="after")
    def _gpus_requested(self) -> JobqueueConfig:
        n = self.gpus_per_job
        stated = slurm_gpu_request(self.job_extra_directives)
        where = "orchestration.jobqueue.job_extra_directives"
        if stated is None:
            pbs = pbs_gpu_request(self.resource_spec, self.job_extra_directives)
            if pbs is not None:
                stated = pbs
                where = f"orchestration.jobqueue.{pbs[1].split(' ', 1)[0]}"
        if stated is not None and stated[0] < n:
            raise ValueError(
                f"{where} requests {stated[0]} GPU(s) per job ({stated[1].split(' ', 1)[-1]}) "
                f"but orchestration.jobqueue.gpus_per_job is {n}: each of the job's {n} "
                "workers claims one GPU. Remove the GPU request (it is derived from "
                "gpus_per_job) or make both agree"
            )
        if self.resource_spec and stated is None:
            raise ValueError(
                f"orchestration.jobqueue.resource_spec {self.resource_spec!r} requests no GPU "
                f"(no ngpus=) but orchestration.jobqueue.gpus_per_job is {n}: the jobs would "
                f"get no GPU while their workers claim {n}. Add ngpus={n} to resource_spec, or "
                "leave resource_spec unset to have it derived"
            )
        self.lifetime()  # a lifetime that does not fit the walltime is reported now
        return self

    def lifetime(self) -> tuple[str, str] | None:
        """(worker lifetime, stagger) as Dask durations, or None when `worker_lifetime: off`.

        Default: the walltime W less a margin for a graceful close (5% of W, at least 2
        minutes) less the stagger (5% of W, at most 5 minutes), so every worker, however
        staggered, retires before its job is killed."""
        if str(self.worker_lifetime).lower() in ("off", "false", "none") and (
            self.worker_lifetime is not None
        ):
            return None
        wall = walltime_seconds(self.walltime)
        try:
            stagger = (
                _seconds(self.lifetime_stagger)
                if self.lifetime_stagger is not None
                else min(300.0, 0.05 * wall)
            )
            life = (
                _seconds(self.worker_lifetime)
                if self.worker_lifetime is not None
                else wall - max(120.0, 0.05 * wall) - stagger
            )
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                "orchestration.jobqueue.worker_lifetime / lifetime_stagger: use a duration "
                "such as '11h', '45m' or '90s' (or worker_lifetime: off)"
            ) from None
        if life <= 0 or life + stagger >= wall:
            raise ValueError(
                f"orchestration.jobqueue.worker_lifetime ({_duration(max(life, 0))}) plus "
                f"lifetime_stagger ({_duration(stagger)}) must be shorter than "
                f"orchestration.jobqueue.walltime ({self.walltime}): workers must retire "
                "before the batch system kills their job"
            )
        return _duration(life), _duration(stagger)


class OrchestrationConfig(_Strict):
    """Where and how models train (flows/): Prefect flow over a Dask cluster.

    Whether models run by generations or in steady state is the adapter's (its `mode`;
    NSGA-Net: `search.options.mode`). `runner: plain` skips Prefect and Dask (one model at
    a time in this process).
    """

    runner: Literal["prefect", "plain"] = "prefect"
    cluster: Literal["local", "address", "slurm", "pbs"] = "local"
    address: str | None = None
    n_workers: int | None = Field(None, ge=1)
    threads_per_worker: int | None = Field(None, ge=1)
    task_retries: int = Field(2, ge=0)
    retry_delay_seconds: float = Field(0.0, ge=0.0)
    jobqueue: JobqueueConfig = JobqueueConfig()

    @model_validator(mode="before")
    @classmethod
    def _mode_moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and "mode" in data:
            raise ValueError(
                "orchestration.mode moved: the adapter declares its schedule (for NSGA-Net "
                "set search.options.mode: steady_state for the old `async`, or generational)"
            )
        return data

    @model_validator(mode="after")
    def _address_needed(self) -> OrchestrationConfig:
        if self.cluster == "address" and not self.address:
            raise ValueError(
                "orchestration.address is required when orchestration.cluster is 'address' "
                "(the scheduler's address, e.g. tcp://10.0.0.5:8786)"
            )
        if self.address and self.cluster != "address":
            raise ValueError(
                f"orchestration.address is set but orchestration.cluster is '{self.cluster}'; "
                "set cluster: address to use an existing scheduler, or remove address"
            )
        return self


class RunConfig(_Strict):
    """A whole search."""

    name: str = "a4nn-search"
    seed: int = 0
    plugins: list[str] = Field(default_factory=list)
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    search: SearchConfig = SearchConfig()
    engine: EngineSection = EngineSection()
    lineage: LineageConfig = LineageConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("name must not be empty")
        return v

    @model_validator(mode="before")
    @classmethod
    def _load_plugins(cls, data: Any) -> Any:
        """Import the plugin modules first: the search section names what they register."""
        if isinstance(data, dict) and isinstance(data.get("plugins"), list):
            from a4nn.registry import load_plugins

            load_plugins(str(m) for m in data["plugins"])
        return data

    @model_validator(mode="after")
    def _search_options_valid(self) -> RunConfig:
        """The space and the adapter exist and accept their options (built once, cheaply)."""
        from a4nn.registry import create_adapter, create_space

        space = create_space(self.search.space, self.search.space_options)
        create_adapter(self.search.adapter, space, self.search.options, self.search_seed)
        return self

    def create_space(self) -> Any:
        """The run's search space, built with its options (a `SearchSpace`)."""
        from a4nn.registry import create_space

        return create_space(self.search.space, self.search.space_options)

    def create_adapter(self) -> Any:
        """The run's NAS adapter over its search space, seeded (an `Adapter`)."""
        from a4nn.registry import create_adapter

        return create_adapter(
            self.search.adapter, self.create_space(), self.search.options, self.search_seed
        )

    @property
    def search_seed(self) -> int:
        """The adapter's seed: `search.seed`, else the run's `seed`."""
        return self.search.seed if self.search.seed is not None else self.seed

    def resolve_paths(self, base: Path) -> RunConfig:
        """Make relative data paths relative to the config file's folder."""
        data = self.data
        updates: dict[str, Any] = {}
        if data.path is not None and not data.path.is_absolute():
            updates["path"] = (base / data.path).resolve()
        if not data.cache_dir.is_absolute():
            updates["cache_dir"] = (base / data.cache_dir).resolve()
        if updates:
            return self.model_copy(update={"data": data.model_copy(update=updates)})
        return self


def _format_validation(err: ValidationError, source: str) -> str:
    lines = [f"invalid config {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"  - {loc}: {msg}" if loc else f"  - {msg}")
    lines.append("Fix the field(s) above; see README.md 'Configuration' for every field.")
    return "\n".join(lines)


def config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> RunConfig:
    """Validate a parsed config; errors are ConfigError naming `source` and the field."""
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid config {source}: the top level must be a mapping of sections")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_validation(err, source)) from None


def load_config(path: str | Path, base: Path | None = None) -> RunConfig:
    """Read and validate a YAML config.

    Relative data paths resolve against `base`, by default the config file's folder (an
    embedded config passes the working directory instead).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config {path} is not valid YAML: {err}") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"config {path} is not a text file (it does not decode as UTF-8); give a YAML file"
        ) from None
    return config_from_dict(raw, str(path)).resolve_paths(base or path.parent)


def embedded_config_path(name: str = "quickstart") -> Path:
    """Path of a config shipped inside the package (quickstart, paper, tiny)."""
    ref = resources.files("a4nn") / "configs" / f"{name}.yaml"
    return Path(str(ref))
