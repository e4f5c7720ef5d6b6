"""Every family's stage tables and named members. Adding a family = adding a table file here."""

from effnet.models.families import efficientnet, efficientnet_v2, mobilenet

CONFIGS = (*efficientnet.CONFIGS, *efficientnet_v2.CONFIGS, *mobilenet.CONFIGS)
