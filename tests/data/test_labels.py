from effnet.data import imagenet_labels

# Indices every ImageNet-1k model (torchvision, timm, TF/Keras) agrees on.
KNOWN = {
    0: "tench",
    1: "goldfish",
    281: "tabby",
    282: "tiger cat",
    285: "Egyptian cat",
    504: "coffee mug",
    657: "missile",
    744: "projectile",
    967: "espresso",
    999: "toilet tissue",
}


def test_thousand_names_in_standard_order():
    labels = imagenet_labels()
    assert len(labels) == 1000
    for index, name in KNOWN.items():
        assert labels[index] == name
    assert all(name and name == name.strip() for name in labels)
    # The two known duplicates of the ILSVRC2012 synset names, and no others.
    assert labels[134] == labels[517] == "crane"
    assert labels[638] == labels[639] == "maillot"
    assert len(set(labels)) == 998


def test_each_call_returns_a_fresh_list():
    labels = imagenet_labels()
    labels[0] = "changed"
    assert imagenet_labels()[0] == "tench"
