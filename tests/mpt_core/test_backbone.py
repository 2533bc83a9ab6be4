"""The backbone loader: weights come only from safetensors files, never from a pickle."""

import shutil

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM

from mpt_core.backbone import BackboneError, load_backbone


def test_a_pickled_checkpoint_is_refused_not_unpickled(tiny_dir, tmp_path):
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_dir, pickled)
    for f in pickled.glob("*.safetensors"):
        f.unlink()
    # the format transformers still reads when asked to: a pickled state dict (torch.load)
    torch.save(AutoModelForSeq2SeqLM.from_pretrained(str(tiny_dir)).state_dict(), pickled / "pytorch_model.bin")
    assert (pickled / "pytorch_model.bin").exists() and not list(pickled.glob("*.safetensors"))
    with pytest.raises(BackboneError, match="cannot load backbone"):
        load_backbone(str(pickled), device="cpu")
    assert load_backbone(str(tiny_dir), device="cpu").d_model == 32  # the safetensors copy loads
