# Runs on the device (MicroPython): MNIST images through a tbn model, one line per image.
# The model and the images are read in place from /rom (ROMFS), or from the current folder:
#   tbn micropython boot --model mnist.tbn --file images.bin     (prints the port)
#   mpremote connect socket://127.0.0.1:PORT run examples/micropython/mnist.py
# images.bin holds float32 images of 28x28, standardised as tbn trains on them (see images.py).
import array
import os

import tbn

ROOT = "/rom" if "rom" in os.listdir("/") and "mnist.tbn" in os.listdir("/rom") else "."


def view(path):
    f = open(path, "rb")
    try:
        return memoryview(f)  # ROMFS: the file's bytes in place, no copy
    except TypeError:
        return f.read()


model = tbn.Model(view(ROOT + "/mnist.tbn"))
info = model.info()
print("model:", info["input_shape"], info["input_dtype"], "->", info["output_shape"],
      "arena", info["arena_bytes"], "bytes")
images = view(ROOT + "/images.bin")
size = 28 * 28 * 4
scores = None
for i in range(len(images) // size):
    x = array.array("f", bytes(images[i * size:(i + 1) * size]))  # an int8 model quantises it
    scores = model.predict(x, scores)
    best = max(range(len(scores)), key=lambda k: scores[k])
    print("image", i, "class", best)
