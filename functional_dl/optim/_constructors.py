"""The optimizer constructors as exported: each remembers its arguments (``configurable``),
so that ``param_groups`` can build a group's optimizer from overrides of ``default``."""

from __future__ import annotations

from ._adafactor import adafactor as _adafactor
from ._adagrad import adadelta as _adadelta
from ._adagrad import adagrad as _adagrad
from ._adam import adam as _adam
from ._adam import adamax as _adamax
from ._adam import adamw as _adamw
from ._adam import nadam as _nadam
from ._adam import radam as _radam
from ._asgd import asgd as _asgd
from ._lion import lion as _lion
from ._muon import muon as _muon
from ._param_groups import configurable
from ._rmsprop import rmsprop as _rmsprop
from ._rprop import rprop as _rprop
from ._sgd import sgd as _sgd

# exported by the package

sgd = configurable(_sgd)
adagrad = configurable(_adagrad)
rmsprop = configurable(_rmsprop)
adam = configurable(_adam)
adamw = configurable(_adamw)
nadam = configurable(_nadam)
radam = configurable(_radam)
adamax = configurable(_adamax)
adadelta = configurable(_adadelta)
lion = configurable(_lion)
adafactor = configurable(_adafactor)
rprop = configurable(_rprop)
asgd = configurable(_asgd)
muon = configurable(_muon)
