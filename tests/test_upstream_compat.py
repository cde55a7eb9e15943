"""A trainer written in upstream CoOp's style runs on our engine unchanged.

The file below is CoOp's ``trainers/coop.py`` (KaiyangZhou/CoOp) as upstream wrote it, trimmed to the
generic-context path and with the registered class renamed so it does not clash with ours: it imports
only from ``dassl.*`` and ``clip``, loads CLIP through ``clip._MODELS``/``clip._download``/
``clip.build_model`` and uses the TrainerX hooks.
"""

import hashlib
import importlib.util
import shutil
import sys
import textwrap

import pytest
import torch

import clip
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum
from dassl.engine import build_trainer
from tests.tiny_clip import save_tiny_clip

UPSTREAM_COOP = textwrap.dedent(
    '''
    import os.path as osp

    import torch
    import torch.nn as nn
    from torch.nn import functional as F

    from dassl.engine import TRAINER_REGISTRY, TrainerX
    from dassl.metrics import compute_accuracy
    from dassl.utils import load_pretrained_weights, load_checkpoint
    from dassl.optim import build_optimizer, build_lr_scheduler

    from clip import clip
    from clip.simple_tokenizer import SimpleTokenizer as _Tokenizer

    _tokenizer = _Tokenizer()


    def load_clip_to_cpu(cfg):
        backbone_name = cfg.MODEL.BACKBONE.NAME
        url = clip._MODELS[backbone_name]
        model_path = clip._download(url)

        try:
            # loading JIT archive
            model = torch.jit.load(model_path, map_location="cpu").eval()
            state_dict = None

        except RuntimeError:
            state_dict = torch.load(model_path, map_location="cpu")

        model = clip.build_model(state_dict or model.state_dict())

        return model


    class TextEncoder(nn.Module):
        def __init__(self, clip_model):
            super().__init__()
            self.transformer = clip_model.transformer
            self.positional_embedding = clip_model.positional_embedding
            self.ln_final = clip_model.ln_final
            self.text_projection = clip_model.text_projection
            self.dtype = clip_model.dtype

        def forward(self, prompts, tokenized_prompts):
            x = prompts + self.positional_embedding.type(self.dtype)
            x = x.permute(1, 0, 2)  # NLD -> LND
            x = self.transformer(x)
            x = x.permute(1, 0, 2)  # LND -> NLD
            x = self.ln_final(x).type(self.dtype)

            # x.shape = [batch_size, n_ctx, transformer.width]
            # take features from the eot embedding (eot_token is the highest number in each sequence)
            x = x[torch.arange(x.shape[0]), tokenized_prompts.argmax(dim=-1)] @ self.text_projection

            return x


    class PromptLearner(nn.Module):
        def __init__(self, cfg, classnames, clip_model):
            super().__init__()
            n_cls = len(classnames)
            n_ctx = cfg.TRAINER.COOP.N_CTX
            dtype = clip_model.dtype
            ctx_dim = clip_model.ln_final.weight.shape[0]

            print("Initializing a generic context")
            ctx_vectors = torch.empty(n_ctx, ctx_dim, dtype=dtype)
            nn.init.normal_(ctx_vectors, std=0.02)
            prompt_prefix = " ".join(["X"] * n_ctx)

            self.ctx = nn.Parameter(ctx_vectors)  # to be optimized

            classnames = [name.replace("_", " ") for name in classnames]
            name_lens = [len(_tokenizer.encode(name)) for name in classnames]
            prompts = [prompt_prefix + " " + name + "." for name in classnames]

            tokenized_prompts = torch.cat([clip.tokenize(p) for p in prompts])
            with torch.no_grad():
                embedding = clip_model.token_embedding(tokenized_prompts).type(dtype)

            self.register_buffer("token_prefix", embedding[:, :1, :])  # SOS
            self.register_buffer("token_suffix", embedding[:, 1 + n_ctx :, :])  # CLS, EOS

            self.n_cls = n_cls
            self.n_ctx = n_ctx
            self.tokenized_prompts = tokenized_prompts  # torch.Tensor
            self.name_lens = name_lens

        def forward(self):
            ctx = self.ctx
            if ctx.dim() == 2:
                ctx = ctx.unsqueeze(0).expand(self.n_cls, -1, -1)
            prefix = self.token_prefix
            suffix = self.token_suffix
            prompts = torch.cat([prefix, ctx, suffix], dim=1)
            return prompts


    class CustomCLIP(nn.Module):
        def __init__(self, cfg, classnames, clip_model):
            super().__init__()
            self.prompt_learner = PromptLearner(cfg, classnames, clip_model)
            self.tokenized_prompts = self.prompt_learner.tokenized_prompts
            self.image_encoder = clip_model.visual
            self.text_encoder = TextEncoder(clip_model)
            self.logit_scale = clip_model.logit_scale
            self.dtype = clip_model.dtype

        def forward(self, image):
            image_features = self.image_encoder(image.type(self.dtype))

            prompts = self.prompt_learner()
            tokenized_prompts = self.tokenized_prompts
            text_features = self.text_encoder(prompts, tokenized_prompts)

            image_features = image_features / image_features.norm(dim=-1, keepdim=True)
            text_features = text_features / text_features.norm(dim=-1, keepdim=True)

            logit_scale = self.logit_scale.exp()
            logits = logit_scale * image_features @ text_features.t()

            return logits


    @TRAINER_REGISTRY.register()
    class UpstreamCoOp(TrainerX):
        """Context Optimization (CoOp)."""

        def check_cfg(self, cfg):
            assert cfg.TRAINER.COOP.PREC in ["fp16", "fp32", "amp"]

        def build_model(self):
            cfg = self.cfg
            classnames = self.dm.dataset.classnames

            print(f"Loading CLIP (backbone: {cfg.MODEL.BACKBONE.NAME})")
            clip_model = load_clip_to_cpu(cfg)

            if cfg.TRAINER.COOP.PREC == "fp32" or cfg.TRAINER.COOP.PREC == "amp":
                # CLIP's default precision is fp16
                clip_model.float()

            print("Building custom CLIP")
            self.model = CustomCLIP(cfg, classnames, clip_model)

            print("Turning off gradients in both the image and the text encoder")
            for name, param in self.model.named_parameters():
                if "prompt_learner" not in name:
                    param.requires_grad_(False)

            if cfg.MODEL.INIT_WEIGHTS:
                load_pretrained_weights(self.model.prompt_learner, cfg.MODEL.INIT_WEIGHTS)

            self.model.to(self.device)
            # NOTE: only give prompt_learner to the optimizer
            self.optim = build_optimizer(self.model.prompt_learner, cfg.OPTIM)
            self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
            self.register_model("prompt_learner", self.model.prompt_learner, self.optim, self.sched)

        def forward_backward(self, batch):
            image, label = self.parse_batch_train(batch)
            output = self.model(image)
            loss = F.cross_entropy(output, label)
            self.model_backward_and_update(loss)

            loss_summary = {
                "loss": loss.item(),
                "acc": compute_accuracy(output, label)[0].item(),
            }

            if (self.batch_idx + 1) == self.num_batches:
                self.update_lr()

            return loss_summary

        def parse_batch_train(self, batch):
            input = batch["img"]
            label = batch["label"]
            input = input.to(self.device)
            label = label.to(self.device)
            return input, label

        def load_model(self, directory, epoch=None):
            if not directory:
                print("Note that load_model() is skipped as no pretrained model is given")
                return

            names = self.get_model_names()

            # By default, the best model is loaded
            model_file = "model-best.pth.tar"

            if epoch is not None:
                model_file = "model.pth.tar-" + str(epoch)

            for name in names:
                model_path = osp.join(directory, name, model_file)

                if not osp.exists(model_path):
                    raise FileNotFoundError('Model not found at "{}"'.format(model_path))

                checkpoint = load_checkpoint(model_path)
                state_dict = checkpoint["state_dict"]
                epoch = checkpoint["epoch"]

                # Ignore fixed token vectors
                if "token_prefix" in state_dict:
                    del state_dict["token_prefix"]

                if "token_suffix" in state_dict:
                    del state_dict["token_suffix"]

                print("Loading weights to {} "
                      'from "{}" (epoch = {})'.format(name, model_path, epoch))
                # set strict=False
                self._models[name].load_state_dict(state_dict, strict=False)
    '''
)

COLOURS = ["red", "green", "blue", "yellow"]


@DATASET_REGISTRY.register()
class UpstreamColours(DatasetBase):
    """Four flat-colour classes written as PNG files under the dataset root."""

    dataset_dir = "upstream_colours"

    def __init__(self, cfg):
        from PIL import Image

        root = cfg.DATASET.ROOT
        rgb = {
            "red": (220, 30, 30),
            "green": (30, 200, 30),
            "blue": (30, 30, 220),
            "yellow": (230, 220, 20),
        }
        items = []
        for label, name in enumerate(COLOURS):
            for i in range(4):
                path = f"{root}/{name}_{i}.png"
                Image.new("RGB", (32, 32), rgb[name]).save(path)
                items.append(Datum(impath=path, label=label, classname=name))
        super().__init__(train_x=items, val=items, test=items)


@pytest.fixture
def upstream_module(tmp_path, monkeypatch):
    # a tiny CLIP published under an OpenAI-style URL whose path carries its SHA-256, already cached
    weights = tmp_path / "tiny.pt"
    save_tiny_clip(weights, fmt="torchscript")
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    home = tmp_path / "home"
    (home / ".cache" / "clip").mkdir(parents=True)
    shutil.copy(weights, home / ".cache" / "clip" / "tiny.pt")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setitem(
        clip._MODELS, "Tiny", f"https://openaipublic.azureedge.net/clip/models/{sha}/tiny.pt"
    )

    path = tmp_path / "upstream_coop.py"
    path.write_text(UPSTREAM_COOP)
    spec = importlib.util.spec_from_file_location("upstream_coop", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "upstream_coop", module)
    spec.loader.exec_module(module)
    yield module
    from dassl.engine import TRAINER_REGISTRY

    TRAINER_REGISTRY._obj_map.pop("UpstreamCoOp", None)


def test_upstream_coop_trainer_runs_unchanged(upstream_module, tmp_path, monkeypatch):
    import train
    from dassl.utils import setup_logger

    args = train.build_parser().parse_args(
        [
            "--root", str(tmp_path),
            "--trainer", "UpstreamCoOp",
            "--output-dir", str(tmp_path / "run"),
            "--seed", "0",
            "DATASET.NAME", "UpstreamColours",
            "MODEL.BACKBONE.NAME", "Tiny",
            "INPUT.SIZE", "(32, 32)",
            "INPUT.TRANSFORMS", "['normalize']",
            "OPTIM.MAX_EPOCH", "2",
            "OPTIM.LR", "0.01",
            "DATALOADER.TRAIN_X.BATCH_SIZE", "8",
            "DATALOADER.NUM_WORKERS", "0",
            "TRAINER.COOP.N_CTX", "2",
            "TRAINER.COOP.PREC", "fp32",
        ]
    )  # fmt: skip
    cfg = train.setup_cfg(args)
    monkeypatch.setattr(
        sys, "stdout", sys.stdout
    )  # setup_logger tees stdout: undone after the test
    setup_logger(cfg.OUTPUT_DIR)
    trainer = build_trainer(cfg)
    assert type(trainer).__name__ == "UpstreamCoOp"
    ctx_before = trainer.model.prompt_learner.ctx.detach().clone()
    trainer.train()
    ctx_after = trainer.model.prompt_learner.ctx.detach().clone()
    assert not torch.equal(ctx_before, ctx_after), "training did not move the context vectors"
    assert (tmp_path / "run" / "prompt_learner" / "model.pth.tar-2").is_file()
    sys.stdout.flush()
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "Finish training" in log and "* accuracy:" in log

    # the upstream load_model reads our checkpoint back
    fresh = build_trainer(cfg)
    fresh.load_model(str(tmp_path / "run"), epoch=2)
    assert torch.equal(fresh.model.prompt_learner.ctx.detach(), ctx_after)
