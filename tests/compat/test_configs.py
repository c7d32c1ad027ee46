"""runnable's run configs work: type names, common keys, notes for keys conveyor handles
otherwise, the retry executor, and runnable's Argo config translated or refused."""

from __future__ import annotations

from pathlib import Path

import yaml

from support import ROOT, TASKS, run_cli
from support.argo_schema import schema_errors

HERE = Path(__file__).parent
ENV = {"PYTHONPATH": f"{HERE}:{TASKS}"}
PIPELINE = """dag:
  start_at: first
  steps:
    first:
      type: task
      command: rtasks.write_output
      returns: [label]
      catalog: {put: [output.txt]}
      next: second
    second: {type: task, command: rtasks.pid, returns: [p2], next: third}
    third: {type: task, command: rtasks.pid, returns: [p3], next: success}
    success: {type: success}
    fail: {type: fail}
"""


def run(
    where: Path, config: str, *extra: str, pipeline: str = PIPELINE, params: str = "label: hello\n"
) -> tuple[int, str]:
    (where / "pipeline.yaml").write_text(pipeline)
    (where / "config.yaml").write_text(config)
    (where / "params.yaml").write_text(params)
    out = run_cli(
        "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", *extra, cwd=where, env=ENV
    )
    return out.returncode, out.stdout + out.stderr


def test_runnable_type_names_and_keys(tmp_path: Path) -> None:
    (tmp_path / "vars.env").write_text("TOKEN=abcdef\n")
    config = """pipeline-executor:
  type: local
  config:
    enable_parallel: true
    object_serialisation: true
run-log-store:
  type: chunked-fs
  config:
    log_folder: logs
catalog:
  type: file-system
  config:
    catalog_location: store
secrets:
  type: dotenv
  config:
    location: vars.env
"""
    code, output = run(tmp_path, config, "--run-id", "c1")
    assert code == 0, output
    assert (tmp_path / "store" / "c1" / "output.txt").read_text() == "hello"
    assert (tmp_path / "logs" / "c1").is_dir()
    notes = [line for line in output.splitlines() if line.startswith("conveyor: note:")]
    assert len(notes) == 2
    assert "executor.config.enable_parallel" in notes[0] and "max_workers" in notes[0]
    assert "executor.config.object_serialisation" in notes[1]


def test_defaults_of_runnable_names_are_runnable_folders(tmp_path: Path) -> None:
    config = (
        "run_log_store: {type: file-system}\ncatalog: {type: file-system}\nsecrets: {type: env-secrets}\n"
    )
    code, output = run(tmp_path, config, "--run-id", "c2")
    assert code == 0, output
    assert (tmp_path / ".catalog" / "c2" / "output.txt").exists()
    assert (tmp_path / ".run_log_store" / "c2").is_dir()
    for memory in (
        "run_log_store: {type: buffered}\ncatalog: {type: do-nothing}\nsecrets: {type: do-nothing}\n",
    ):
        assert run(tmp_path, memory)[0] == 0


def test_emulator_runs_each_step_in_its_own_process(tmp_path: Path) -> None:
    config = "executor: {type: emulator}\nrun_log_store: {type: file-system}\n"
    code, output = run(tmp_path, config, "--run-id", "e1")
    assert code == 0, output
    from conveyor.runlog.file import FileRunLogStore

    final = FileRunLogStore(str(tmp_path / ".run_log_store")).load("e1").run.final_parameters
    assert final["p2"] != final["p3"]


def test_retry_executor_resumes_the_named_run(tmp_path: Path) -> None:
    flaky = """dag:
  start_at: once
  steps:
    once: {type: task, command: rtasks.touch, next: flaky}
    flaky: {type: task, command: rtasks.flaky, returns: [r], next: success}
"""
    params = "marker: m\ncounter: calls\n"
    base = "run_log_store: {type: file-system}\n"
    code, _ = run(tmp_path, base, "--run-id", "first", pipeline=flaky, params=params)
    assert code == 1
    retry = base + "executor: {type: retry, config: {run_id: first}}\n"
    code, output = run(tmp_path, retry, pipeline=flaky, params=params)
    assert code == 0, output
    assert "resumes run 'first' in place" in output
    assert (tmp_path / "calls").read_text() == "ran\n"  # `once` was reused, not run again


def test_unusable_keys_are_located_errors(tmp_path: Path) -> None:
    code, output = run(
        tmp_path, "run_log_store:\n  type: file-system\n  config:\n    log_folder: x\n    bogus: 1\n"
    )
    assert code == 2 and "does not take 'bogus'" in output and "config.yaml" in output
    code, output = run(tmp_path, "executor: {type: retry}\n")
    assert code == 2 and "needs the run_id" in output


RUNNABLE_ARGO = """pipeline-executor:
  type: argo
  config:
    pvc_for_runnable: runnable-data
    defaults:
      image: registry.example/pipelines:1.2
      imagePullPolicy: IfNotPresent
      resources:
        limits: {memory: 2Gi, cpu: "1", gpu: 1}
        requests: {memory: 1Gi, cpu: 500m}
      env:
        - {name: MODE, value: batch}
        - {name: API_KEY, secretName: api, secretKey: key}
      retryStrategy: {limit: 2}
    argoWorkflow:
      metadata:
        generateName: nightly-
        namespace: pipelines
        labels: {team: geo}
      spec:
        serviceAccountName: runner
        parallelism: 4
        podGC: {strategy: OnPodSuccess}
run_log_store: {type: file-system, config: {log_folder: /tmp/run_log_store}}
catalog: {type: file-system, config: {catalog_location: /tmp/catalog}}
"""


def test_runnable_argo_config_is_translated(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / "argo.yaml").write_text(RUNNABLE_ARGO)
    out = run_cli("render", "argo", "-f", "pipeline.yaml", "-c", "argo.yaml", "-o", "wf.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    notes = out.stderr
    assert "metadata.generate_name" in notes and "defaults.retry_strategy" in notes
    doc = yaml.safe_load((tmp_path / "wf.yaml").read_text())
    assert doc["metadata"]["namespace"] == "pipelines" and doc["metadata"]["labels"]["team"] == "geo"
    spec = doc["spec"]
    assert spec["serviceAccountName"] == "runner" and spec["parallelism"] == 4
    assert spec["podGC"] == {"strategy": "OnPodSuccess"}
    assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == "runnable-data"
    step = next(t for t in spec["templates"] if t["name"] == "step")["container"]
    assert step["image"] == "registry.example/pipelines:1.2" and step["imagePullPolicy"] == "IfNotPresent"
    assert step["resources"]["limits"] == {"memory": "2Gi", "cpu": "1", "nvidia.com/gpu": "1"}
    assert {"name": "MODE", "value": "batch"} in step["env"]
    assert {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "api", "key": "key"}}} in step["env"]
    assert step["volumeMounts"][0]["mountPath"] == "/tmp"
    assert schema_errors(doc) == []


def test_runnable_named_overrides_are_translated_and_used_by_name(tmp_path: Path) -> None:
    text = yaml.safe_load(RUNNABLE_ARGO)
    text["pipeline-executor"]["config"]["overrides"] = {
        "smaller": {
            "image": "registry.example/pipelines:small",
            "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
            "env": [{"name": "MODE", "value": "small"}],
        }
    }
    (tmp_path / "argo.yaml").write_text(yaml.safe_dump(text))
    (tmp_path / "pipeline.yaml").write_text(
        PIPELINE.replace("      next: second\n", "      overrides: {argo: smaller}\n      next: second\n")
    )
    out = run_cli("render", "argo", "-f", "pipeline.yaml", "-c", "argo.yaml", "-o", "wf.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load((tmp_path / "wf.yaml").read_text())
    templates = {t["name"]: t for t in doc["spec"]["templates"]}
    by_step = {
        task["arguments"]["parameters"][0]["value"]: templates[task["template"]]["container"]
        for task in templates["main"]["dag"]["tasks"]
        if task.get("arguments")
    }
    small, plain = by_step["first"], by_step["second"]
    assert (
        small["image"] == "registry.example/pipelines:small"
        and {"name": "MODE", "value": "small"} in small["env"]
    )
    # the override's limits replace the defaults' limits as a whole (no GPU for "smaller")
    assert small["resources"]["limits"] == {"memory": "1Gi", "cpu": "500m"}
    assert (
        plain["image"] == "registry.example/pipelines:1.2"
        and {"name": "MODE", "value": "batch"} in plain["env"]
    )
    assert schema_errors(doc) == []


def test_untranslatable_argo_keys_are_refused_with_the_conveyor_key(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    text = yaml.safe_load(RUNNABLE_ARGO)
    text["pipeline-executor"]["config"]["overrides"] = {"big": {"image": "other", "parallelism": 2}}
    (tmp_path / "argo.yaml").write_text(yaml.safe_dump(text))
    out = run_cli("render", "argo", "-f", "pipeline.yaml", "-c", "argo.yaml", cwd=tmp_path)
    assert out.returncode == 2
    assert 'executor".config.overrides.big.parallelism' in out.stderr and "max_parallelism" in out.stderr
    assert "argo.yaml:" in out.stderr
    assert ROOT.exists()


def test_conveyor_keys_beside_runnable_ones_are_kept(tmp_path: Path) -> None:
    from conveyor.executors.argo.config import ArgoConfig
    from conveyor.spec.compat_argo import CONVEYOR_KEYS

    assert set(ArgoConfig.model_fields) == CONVEYOR_KEYS  # the translation knows every key
    mixed = yaml.safe_load(RUNNABLE_ARGO)
    mixed["pipeline-executor"]["config"].update(ttl_seconds=600, working_dir="/work")
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / "argo.yaml").write_text(yaml.safe_dump(mixed))
    out = run_cli("render", "argo", "-f", "pipeline.yaml", "-c", "argo.yaml", "-o", "wf.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load((tmp_path / "wf.yaml").read_text())
    assert doc["spec"]["ttlStrategy"] == {"secondsAfterCompletion": 600}
    step = next(t for t in doc["spec"]["templates"] if t["name"] == "step")["container"]
    assert step["workingDir"] == "/work"
