"""`kit run`'s adapter step: the stage's files taken from the workdir, its summary for the manifest (registered in
kit/stages.py's ordered list)."""
from __future__ import annotations

from ..logs import note
from ..pipeline import Pipeline, Stage, model_reads, summary_of
from .options import AdapterOptions
from ..train.step import train_data


def adapter_specs(p: Pipeline) -> dict[str, str]:
    """adapter.providers: {name: provider spec}; `base` means the base model through the local provider."""
    return {name: spec for name, (spec, _) in adapter_entries(p).items()}


def adapter_entries(p: Pipeline) -> dict[str, tuple[str, dict]]:
    from ..adapter import provider_entries

    return {name: ((f"local:{p.model}" if spec == "base" else spec), own)
            for name, (spec, own) in provider_entries(p.options["adapter"]).items()}


def _run_adapter(p: Pipeline, o: AdapterOptions) -> dict:
    from ..adapter import train_adapter
    from ..encode.options import layer_options

    out = {}
    for name, (spec, own) in adapter_entries(p).items():
        note(f"[adapter] {name} over {spec}")
        out[name] = summary_of(train_adapter(spec, train_data(p), p.wd.train_corpus, p.wd.adapters / name, o,
                                           settings=own, encode=layer_options(p)))
    return out


STEP = (Stage("adapter", AdapterOptions, _run_adapter, lambda p, o: [p.wd.adapters / n for n in adapter_specs(p)],
               reads=lambda p, o: [train_data(p), p.wd.train_corpus] + model_reads(p),
               enabled=lambda p: bool(adapter_specs(p)), help="any provider -> adapters/<name>"))
