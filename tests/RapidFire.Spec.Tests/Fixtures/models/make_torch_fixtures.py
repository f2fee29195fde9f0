"""Writes the PyTorch fixtures beside this script, byte for byte as torch.save lays them out, without torch.

torch.save(obj, f) (PyTorch >= 1.6, the zip format) pickles obj with protocol 2 into <archive>/data.pkl; every
tensor is reduced to torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
OrderedDict()) and every storage to the persistent id ('storage', torch.<Dtype>Storage, key, 'cpu', numel) whose
raw little-endian bytes are the zip entry <archive>/data/<key>. A state dict is a collections.OrderedDict carrying
a _metadata attribute. This script stands in the torch classes with stubs of the same module and name, so the
pickle is what torch would write. Run it with any Python 3 (no packages): python3 make_torch_fixtures.py
"""
import collections
import io
import os
import pickle
import struct
import sys
import types
import zipfile

torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
torch._utils = torch_utils
sys.modules["torch"] = torch
sys.modules["torch._utils"] = torch_utils


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks):
    raise NotImplementedError("only pickled here, never called")


def _rebuild_parameter(data, requires_grad, backward_hooks):
    raise NotImplementedError("only pickled here, never called")


for function in (_rebuild_tensor_v2, _rebuild_parameter):
    function.__module__ = "torch._utils"
    setattr(torch_utils, function.__name__, function)


def storage_class(name):
    cls = type(name, (), {})
    cls.__module__ = "torch"
    setattr(torch, name, cls)
    return cls


FloatStorage = storage_class("FloatStorage")
LongStorage = storage_class("LongStorage")


class Storage:
    def __init__(self, kind, fmt, values):
        self.kind, self.numel = kind, len(values)
        self.data = struct.pack("<" + fmt * len(values), *values)


class Tensor:
    def __init__(self, storage, size, stride=None, offset=0):
        if stride is None:
            stride, step = [], 1
            for dim in reversed(size):
                stride.insert(0, step)
                step *= dim
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce_ex__(self, protocol):
        return (_rebuild_tensor_v2, self.args)


class Parameter:
    """An nn.Parameter, as torch.save(model) (not model.state_dict()) pickles the weights."""

    def __init__(self, tensor):
        self.tensor = tensor

    def __reduce_ex__(self, protocol):
        return (_rebuild_parameter, (self.tensor, True, collections.OrderedDict()))


def save(obj, path):
    storages = {}

    class Pickler(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, Storage):
                key = storages.setdefault(id(o), (str(len(storages)), o))[0]
                return ("storage", o.kind, key, "cpu", o.numel)
            return None

    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        def record(name, data):  # a fixed timestamp keeps the output the same from run to run
            z.writestr(zipfile.ZipInfo("archive/" + name, date_time=(1980, 1, 1, 0, 0, 0)), data)
        record("data.pkl", buf.getvalue())
        record("byteorder", "little")
        for key, storage in sorted(storages.values(), key=lambda entry: int(entry[0])):
            record(f"data/{key}", storage.data)
        record("version", "3\n")
        record(".data/serialization_id", "0000000000000000000000000000000000000000")


def state_dict(entries):
    sd = collections.OrderedDict(entries)
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("fc", {"version": 1})])
    return sd


here = os.path.dirname(os.path.abspath(__file__))
# nn.Linear(3, 2) named fc, with known weights, and an int64 scalar buffer (like BatchNorm's num_batches_tracked)
weight = [0.5, -1.0, 2.0, 0.25, 3.0, -0.125]
linear = state_dict([
    ("fc.weight", Tensor(Storage(FloatStorage, "f", weight), [2, 3])),
    ("fc.bias", Tensor(Storage(FloatStorage, "f", [1.0, -2.0]), [2])),
    ("steps", Tensor(Storage(LongStorage, "q", [7]), [])),
])
save(linear, os.path.join(here, "linear.pt"))
# the PyTorch tutorial's checkpoint: a plain dict holding the state dict beside other things
save({"epoch": 3, "model_state_dict": linear, "loss": 0.25}, os.path.join(here, "linear-checkpoint.pth"))
# fc.weight stored transposed (a non-contiguous view, as w.t() would save), which the reader does not support
transposed = [0.5, 0.25, -1.0, 3.0, 2.0, -0.125]
save(state_dict([
    ("fc.weight", Tensor(Storage(FloatStorage, "f", transposed), [2, 3], stride=[1, 2])),
    ("fc.bias", Tensor(Storage(FloatStorage, "f", [1.0, -2.0]), [2])),
]), os.path.join(here, "linear-transposed.pt"))
# parameters instead of tensors, as in torch.save(model), which pickles the whole module
save(state_dict([
    ("fc.weight", Parameter(Tensor(Storage(FloatStorage, "f", weight), [2, 3]))),
    ("fc.bias", Parameter(Tensor(Storage(FloatStorage, "f", [1.0, -2.0]), [2]))),
]), os.path.join(here, "linear-parameters.pt"))
