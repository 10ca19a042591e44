"""Phase-3 assets (group `phase3`): seeds, the generator, and the synthetic corpus."""

import dagster as dg

from snowcoder_assets.io import files_under
from snowcoder_assets.lineage.store import refresh_views
from snowcoder_assets.metadata import counts_table
from snowcoder_assets.orchestration.automation import CPU_EAGER, ON_MISSING
from snowcoder_assets.orchestration.pools import GLOBAL_POD, GLOBAL_WRITERS, GPU, GPU_POD
from snowcoder_assets.phase3.resources import SyntheticGeneratorResource
from snowcoder_assets.raw.discovery import materialized_config_partitions
from snowcoder_assets.resources import SnowcoderConfigResource
from snowcoder_assets.results import materialize_files


@dg.asset(
    group_name="phase3",
    deps=["topk_corpus", "tokenizer"],
    kinds={"parquet"},
    pool=GLOBAL_WRITERS,
    op_tags=GLOBAL_POD,
    automation_condition=CPU_EAGER,
)
def synthetic_seeds(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Seeds for phase-3 prompts, sampled (seeded) from the top-k files per language, Python
    raised to `python_share`; a whole file or a snippet cut at function/class boundaries."""
    from snowcoder_assets.phase3.seeds import build_seeds, seeds_path

    config = snowcoder.load()
    partitions = materialized_config_partitions(context.instance, config, "decontaminated_files")
    report = build_seeds(config, partitions, context.log.info)
    metadata = {
        "num_rows": report["seeds"],
        "seeds_by_language": counts_table(report["seeds_by_language"], "lang", "seeds"),
        "cuts": dg.MetadataValue.json(report["cuts"]),
        "seed_tokens": report["seed_tokens"],
        "path": dg.MetadataValue.path(str(seeds_path(config.data_dir))),
    }
    return materialize_files(context, config, [seeds_path(config.data_dir)], metadata)


@dg.asset(
    group_name="phase3",
    deps=["topk_corpus", "tokenizer"],
    kinds={"pytorch"},
    pool=GPU,
    op_tags=GPU_POD,
    automation_condition=ON_MISSING,
)
def synthetic_generator(
    context: dg.AssetExecutionContext,
    snowcoder: SnowcoderConfigResource,
    pipes_subprocess_client: dg.PipesSubprocessClient,
) -> dg.MaterializeResult:
    """The model that writes phase 3: `[synthetic] model` as named, or with none named the
    demo's small generator, trained on the top-k corpus through Pipes."""
    from snowcoder_assets.phase3 import generator as gen

    config = snowcoder.load()
    data_dir = config.data_dir
    if config.synthetic.model or config.synthetic.max_prompts == 0:
        record = gen.named_generator(config)
        files = [gen.write_record(data_dir, record)]
    else:
        record = _train_demo_generator(context, config, pipes_subprocess_client)
        files = [gen.write_record(data_dir, record), *files_under(gen.demo_model_dir(data_dir))]
    metadata = {**{k: str(v) for k, v in record.items()}, "num_files": len(files)}
    return materialize_files(context, config, files, metadata)


def _train_demo_generator(context, config, pipes_client) -> dict:
    from snowcoder_assets.io import file_digest, write_json
    from snowcoder_assets.phase3 import generator as gen
    from snowcoder_assets.training.assets import train_command

    index = gen.pack_topk(config, context.log.info)
    manifest = gen.demo_manifest(config, index, context.log.info)
    path = gen.generator_dir(config.data_dir) / "manifest.json"
    write_json(path, manifest)
    command = train_command(path, "phase1", 0, asset_key="synthetic_generator")
    context.log.info(f"demo generator: {' '.join(command)}")
    pipes_client.run(command=command, context=context, env={"TOKENIZERS_PARALLELISM": "false"})
    model = gen.demo_model_dir(config.data_dir)
    weights = file_digest(model / "model.safetensors")[:12]
    return {
        "label": f"snowcoder-demo-generator@{weights}",  # new weights, new journal
        "backend": "vllm",
        "model": str(model),
        "endpoint": "completions",
        "trained_here": True,
        "steps": config.synthetic.generator_steps,
        "context": gen.DEMO_CONTEXT,
    }


@dg.asset(
    group_name="phase3",
    deps=["synthetic_seeds", "synthetic_generator", "decontaminated_files"],
    kinds={"parquet"},
    pool=GPU,
    op_tags=GPU_POD,
    automation_condition=ON_MISSING,
)
def synthetic_corpus(
    context: dg.AssetExecutionContext,
    snowcoder: SnowcoderConfigResource,
    generation: SyntheticGeneratorResource,
    pipes_subprocess_client: dg.PipesSubprocessClient,
) -> dg.MaterializeResult:
    """Documented, problem-solving files written by the generator from the seeds (OSS-Instruct
    adapted to pretraining), parsed, filtered, deduplicated against phases 1-2 and each other,
    decontaminated; one `synthetic` row per prompt. Resumable: answers are journaled as they
    arrive, so a re-run sends only the prompts still unanswered."""
    from snowcoder_assets.phase3.corpus import build_synthetic_corpus, outputs
    from snowcoder_assets.phase3.generator import generator_dir, read_generator

    config = snowcoder.load()
    data_dir = config.data_dir
    record = read_generator(data_dir)
    backend = generation.backend(
        config,
        record["model"],
        record["endpoint"],
        context,
        pipes_subprocess_client,
        generator_dir(data_dir) / "work",
        record.get("label"),
    )
    partitions = materialized_config_partitions(context.instance, config, "decontaminated_files")
    report = build_synthetic_corpus(config, backend, partitions, context.log.info)
    refresh_views(data_dir)
    metadata = {
        "num_rows": report["kept"],
        "prompts": report["prompts"],
        "sent": report["sent"],
        "kept": report["kept"],
        "dropped_by_reason": counts_table(report["dropped_by_reason"], "reason", "prompts"),
        "kept_by_language": counts_table(report["kept_by_language"], "lang", "files"),
        "generated_tokens": report["generated_tokens"],
        "kept_tokens": report["kept_tokens"],
        "generator": backend.generator,
        "journal": dg.MetadataValue.path(report["journal"]),
    }
    return materialize_files(context, config, outputs(data_dir), metadata)


def code_versions(config) -> dict[str, str]:
    from snowcoder_assets.phase3.prompts import template_text
    from snowcoder_assets.versions import code_version

    def room(*names: str) -> list[str]:
        return [f"snowcoder_assets.phase3.{n}" for n in names]

    synthetic = config.synthetic
    generation = synthetic.model_dump(
        include={
            "backend",
            "model",
            "endpoint",
            "base_url",
            "system_message",
            "max_prompts",
            "budget_tokens",
            "max_tokens",
            "temperature",
            "top_p",
            "seed",
        }
    )
    return {
        "synthetic_seeds": code_version(
            room("seeds"),
            synthetic.model_dump(
                include={"max_prompts", "python_share", "seed_max_tokens", "seed"}
            ),
        ),
        "synthetic_generator": code_version(
            room("generator"),
            synthetic.model_dump(
                include={"model", "backend", "endpoint", "generator_steps", "seed"}
            ),
        ),
        "synthetic_corpus": code_version(
            room("corpus", "parse", "filtering", "prompts", "generation"),
            template_text(),
            generation,
            config.filters,
            config.dedup,
            config.decontamination,
        ),
    }
