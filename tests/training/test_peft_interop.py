"""PEFT MULTITASK_PROMPT_TUNING interop: exported adapters give PEFT the same logits as mpt-serve."""

import pytest
import torch

from mpt_core import Family, Task, compose
from mpt_core.prompted import prompted_forward
from prompts_store import DirectoryStore
from training.data.batching import Collator
from training.peft_interop import export_peft, import_peft

peft = pytest.importorskip("peft")

L = 5


@pytest.fixture
def store_with_tasks(tmp_path, backbone):
    torch.manual_seed(0)
    d = backbone.d_model
    store = DirectoryStore(tmp_path / "store")
    store.put_family(Family("fam", torch.randn(L, d), backbone.fingerprint))
    for name, r in (("alpha", 1), ("beta", 2), ("gamma", 1)):
        store.put_task(Task(name, "fam", torch.randn(L, r), torch.randn(d, r)))
    return store


def test_exported_adapter_gives_peft_the_same_logits(store_with_tasks, backbone, tiny_dir, tmp_path, toy_tasks):
    from safetensors.torch import load_file
    from transformers import AutoModelForSeq2SeqLM

    names = ["alpha", "beta", "gamma"]
    export_peft(store_with_tasks, "fam", names, tmp_path / "adapter", str(tiny_dir))

    config = peft.PeftConfig.from_pretrained(str(tmp_path / "adapter"))
    assert config.peft_type == peft.PeftType.MULTITASK_PROMPT_TUNING and config.num_transformer_submodules == 1
    base = AutoModelForSeq2SeqLM.from_pretrained(str(tiny_dir)).eval()
    model = peft.get_peft_model(base, config).eval()
    peft.set_peft_model_state_dict(model, load_file(str(tmp_path / "adapter" / "adapter_model.safetensors")))

    examples = toy_tasks["polarity"].split("test")[:6]
    collator = Collator(backbone.tokenizer, backbone.device)
    ids, mask = collator.inputs([e.input for e in examples])
    target_ids, target_mask = collator.targets([e.target for e in examples])
    labels = target_ids.masked_fill(target_mask == 0, -100)
    task_ids = torch.tensor([0, 1, 2, 1, 0, 2])  # mixed tasks in one batch

    with torch.no_grad():
        theirs = model(input_ids=ids, attention_mask=mask, labels=labels, task_ids=task_ids).logits
        tasks = [store_with_tasks.get_task(n) for n in names]
        shared = store_with_tasks.get_family("fam").shared
        prompts = torch.stack([compose(shared, tasks[k].u[None], tasks[k].v[None])[0] for k in task_ids.tolist()])
        ours = prompted_forward(backbone.model, prompts, ids, mask, labels).logits
    assert theirs.shape == ours.shape
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-5)


def test_import_round_trips_an_export(store_with_tasks, backbone, tmp_path):
    export_peft(store_with_tasks, "fam", None, tmp_path / "adapter", None)
    other = DirectoryStore(tmp_path / "other")
    result = import_peft(other, tmp_path / "adapter", "fam", backbone.fingerprint)
    assert result["tasks"] == ["alpha", "beta", "gamma"]
    assert torch.equal(other.get_family("fam").shared, store_with_tasks.get_family("fam").shared)
    for name in result["tasks"]:
        a, b = store_with_tasks.get_task(name), other.get_task(name)
        assert a.rank == b.rank  # the zero padding of lower ranks is trimmed again
        assert torch.equal(a.u, b.u) and torch.equal(a.v, b.v)
    with pytest.raises(ValueError, match="already in the store"):
        import_peft(other, tmp_path / "adapter", "fam", backbone.fingerprint)


def test_import_refuses_a_decoder_prefixed_adapter(store_with_tasks, backbone, tmp_path):
    import json

    export_peft(store_with_tasks, "fam", None, tmp_path / "adapter", None)
    cfg_path = tmp_path / "adapter" / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg_path.write_text(json.dumps(cfg | {"num_transformer_submodules": 2}))
    with pytest.raises(ValueError, match="prefix the encoder only"):
        import_peft(DirectoryStore(tmp_path / "x"), tmp_path / "adapter", "fam", backbone.fingerprint)
