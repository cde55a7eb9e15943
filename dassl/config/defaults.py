"""Dassl 0.6.3's default configuration tree, with the keys the CoOp family adds to it.

Differences from Dassl 0.6.3, all additive:

- ``DATASET.SUBSAMPLE_CLASSES`` ("all" | "base" | "new"), which CoOp adds in ``train.py``.
- ``OPTIM.EPS``: epsilon of the adaptive optimizers (adam, amsgrad, adamw, radam, rmsprop).
  1e-8 is PyTorch's default; with fp16 parameters use 1e-3 (1e-8 underflows to 0 in fp16).
- ``OPTIM.LR_SCHEDULER`` also accepts "constant".
- ``DATALOADER.TRAIN_X.DROP_LAST`` (default True, Dassl's behaviour): drop the last incomplete
  batch of the training loader when the training set holds at least one full batch. SEP's release
  trains with ``DROP_LAST: False``; its configs set it.
- ``TRAIN.CHECKPOINT_FREQ``: a checkpoint is written after every epoch so that a killed run can be
  resumed; only the latest is kept, plus every epoch that is a multiple of ``CHECKPOINT_FREQ``
  when it is positive.

The trainer-specific nodes of Dassl's domain-adaptation and semi-supervised trainers (MCD, DAEL,
FixMatch, ...) are not part of this engine; each prompt-learning method adds its own node
(``TRAINER.COOP``, ``TRAINER.SEP``, ...) in ``train.py``'s ``extend_cfg``.
"""

from yacs.config import CfgNode as CN

_C = CN()

# Directory to save the output files (log.txt, checkpoints)
_C.OUTPUT_DIR = "./output"
# Directory holding the checkpoints of a previous run to resume from ("" = OUTPUT_DIR)
_C.RESUME = ""
# A negative seed leaves every random generator unseeded
_C.SEED = -1
_C.USE_CUDA = True
# Print the dataset summary, the trainer and dataset being loaded
_C.VERBOSE = True

###########################
# Input
###########################
_C.INPUT = CN()
_C.INPUT.SIZE = (224, 224)
# Interpolation of the resize functions: bilinear, bicubic or nearest
_C.INPUT.INTERPOLATION = "bilinear"
# Names of the transforms, see dassl/data/transforms/transforms.py
_C.INPUT.TRANSFORMS = ()
# If True, the data loaders return PIL images (no transform at all)
_C.INPUT.NO_TRANSFORM = False
# Mean and std (default: ImageNet)
_C.INPUT.PIXEL_MEAN = [0.485, 0.456, 0.406]
_C.INPUT.PIXEL_STD = [0.229, 0.224, 0.225]
# Random crop
_C.INPUT.CROP_PADDING = 4
# Random resized crop
_C.INPUT.RRCROP_SCALE = (0.08, 1.0)
# Cutout
_C.INPUT.CUTOUT_N = 1
_C.INPUT.CUTOUT_LEN = 16
# Gaussian noise
_C.INPUT.GN_MEAN = 0.0
_C.INPUT.GN_STD = 0.15
# RandAugment
_C.INPUT.RANDAUGMENT_N = 2
_C.INPUT.RANDAUGMENT_M = 10
# ColorJitter (brightness, contrast, saturation, hue)
_C.INPUT.COLORJITTER_B = 0.4
_C.INPUT.COLORJITTER_C = 0.4
_C.INPUT.COLORJITTER_S = 0.4
_C.INPUT.COLORJITTER_H = 0.1
# Probability of random gray scale
_C.INPUT.RGS_P = 0.2
# Gaussian blur: probability and kernel size (odd)
_C.INPUT.GB_P = 0.5
_C.INPUT.GB_K = 21

###########################
# Dataset
###########################
_C.DATASET = CN()
# Directory where the datasets are stored
_C.DATASET.ROOT = ""
_C.DATASET.NAME = ""
# Names of source/target domains (datasets with domains only)
_C.DATASET.SOURCE_DOMAINS = ()
_C.DATASET.TARGET_DOMAINS = ()
# Number of labeled instances in total (semi-supervised learning)
_C.DATASET.NUM_LABELED = -1
# Number of images per class (few-shot learning; -1 = all)
_C.DATASET.NUM_SHOTS = -1
# Percentage of validation data (semi-supervised datasets only)
_C.DATASET.VAL_PERCENT = 0.1
# Fold index of STL-10 (negative = none)
_C.DATASET.STL10_FOLD = -1
# CIFAR-10/100-C's corruption type and level
_C.DATASET.CIFAR_C_TYPE = ""
_C.DATASET.CIFAR_C_LEVEL = 1
# Use all data as unlabeled data (semi-supervised learning)
_C.DATASET.ALL_AS_UNLABELED = False
# Base-to-new generalisation: "all", "base" (first half of the labels) or "new" (the rest)
_C.DATASET.SUBSAMPLE_CLASSES = "all"

###########################
# Dataloader
###########################
_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 4
# Apply the training transform K times to each image
_C.DATALOADER.K_TRANSFORMS = 1
# Also return the image without augmentation under "img0"
_C.DATALOADER.RETURN_IMG0 = False
# Training data loader (labeled data)
_C.DATALOADER.TRAIN_X = CN()
_C.DATALOADER.TRAIN_X.SAMPLER = "RandomSampler"
_C.DATALOADER.TRAIN_X.BATCH_SIZE = 32
# Parameters of domain/class samplers (kept for config compatibility)
_C.DATALOADER.TRAIN_X.N_DOMAIN = 0
_C.DATALOADER.TRAIN_X.N_INS = 16
# Drop the last incomplete batch when the training set holds at least one full batch
_C.DATALOADER.TRAIN_X.DROP_LAST = True
# Unlabeled data loader (kept for config compatibility)
_C.DATALOADER.TRAIN_U = CN()
_C.DATALOADER.TRAIN_U.SAME_AS_X = True
_C.DATALOADER.TRAIN_U.SAMPLER = "RandomSampler"
_C.DATALOADER.TRAIN_U.BATCH_SIZE = 32
_C.DATALOADER.TRAIN_U.N_DOMAIN = 0
_C.DATALOADER.TRAIN_U.N_INS = 16
# Validation and test data loaders
_C.DATALOADER.TEST = CN()
_C.DATALOADER.TEST.SAMPLER = "SequentialSampler"
_C.DATALOADER.TEST.BATCH_SIZE = 32

###########################
# Model
###########################
_C.MODEL = CN()
# Path to model weights used for initialisation
_C.MODEL.INIT_WEIGHTS = ""
_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.NAME = ""
_C.MODEL.BACKBONE.PRETRAINED = True
_C.MODEL.HEAD = CN()
_C.MODEL.HEAD.NAME = ""
_C.MODEL.HEAD.HIDDEN_LAYERS = ()
_C.MODEL.HEAD.ACTIVATION = "relu"
_C.MODEL.HEAD.BN = True
_C.MODEL.HEAD.DROPOUT = 0.0

###########################
# Optimization
###########################
_C.OPTIM = CN()
_C.OPTIM.NAME = "adam"
_C.OPTIM.LR = 0.0003
_C.OPTIM.WEIGHT_DECAY = 5e-4
_C.OPTIM.MOMENTUM = 0.9
_C.OPTIM.SGD_DAMPNING = 0
_C.OPTIM.SGD_NESTEROV = False
_C.OPTIM.RMSPROP_ALPHA = 0.99
# Betas and epsilon of the adaptive optimizers (adam, amsgrad, adamw, radam; EPS also rmsprop)
_C.OPTIM.ADAM_BETA1 = 0.9
_C.OPTIM.ADAM_BETA2 = 0.999
_C.OPTIM.EPS = 1e-8
# Staged learning rate: layers not in NEW_LAYERS get LR * BASE_LR_MULT
_C.OPTIM.STAGED_LR = False
_C.OPTIM.NEW_LAYERS = ()
_C.OPTIM.BASE_LR_MULT = 0.1
# Learning rate scheduler: single_step, multi_step, cosine or constant
_C.OPTIM.LR_SCHEDULER = "single_step"
# -1 or 0 means the step size equals MAX_EPOCH
_C.OPTIM.STEPSIZE = (-1,)
_C.OPTIM.GAMMA = 0.1
_C.OPTIM.MAX_EPOCH = 10
# Set WARMUP_EPOCH larger than 0 to activate warm-up
_C.OPTIM.WARMUP_EPOCH = -1
# Either linear or constant
_C.OPTIM.WARMUP_TYPE = "linear"
# Learning rate of the constant warm-up
_C.OPTIM.WARMUP_CONS_LR = 1e-5
# Starting learning rate of the linear warm-up
_C.OPTIM.WARMUP_MIN_LR = 1e-5
# True: the main scheduler starts counting after the warm-up (last_epoch=-1);
# False: it starts at last_epoch=WARMUP_EPOCH
_C.OPTIM.WARMUP_RECOUNT = True

###########################
# Train
###########################
_C.TRAIN = CN()
# Keep the checkpoint of every epoch that is a multiple of this (<= 0: keep only the latest)
_C.TRAIN.CHECKPOINT_FREQ = 0
# How often (in batches) to print the training progress
_C.TRAIN.PRINT_FREQ = 10
# What counts the iterations of an epoch (only train_x is used here)
_C.TRAIN.COUNT_ITER = "train_x"

###########################
# Test
###########################
_C.TEST = CN()
_C.TEST.EVALUATOR = "Classification"
_C.TEST.PER_CLASS_RESULT = False
# Compute the confusion matrix (rows normalised), saved to OUTPUT_DIR/cmat.pt
_C.TEST.COMPUTE_CMAT = False
# If True, no test after training
_C.TEST.NO_TEST = False
# Split used by test(): "test" or "val"
_C.TEST.SPLIT = "test"
# Model tested after training: "last_step" or "best_val" (evaluates on val after every epoch)
_C.TEST.FINAL_MODEL = "last_step"

###########################
# Trainer specifics
###########################
_C.TRAINER = CN()
_C.TRAINER.NAME = ""
