"""The real-data recipe: GLUE / SuperGLUE / MRQA / others formatted text-to-text as in the MPT
paper (Wang et al., ICLR 2023, following ATTEMPT, Asai et al. 2022), the paper's split protocol
and metrics. See ``lab/glue/README.md``."""
