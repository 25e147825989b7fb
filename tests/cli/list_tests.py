#!/usr/bin/env python3
"""Prints every CLI test as module.Class.method, one per line, so CMake can register each with
CTest on its own."""

import os
import sys
import unittest

sys.dont_write_bytecode = True
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)


def walk(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from walk(item)
        else:
            yield item.id()


loader = unittest.TestLoader()
for name in sorted(walk(loader.discover(here, pattern="test_*.py", top_level_dir=here))):
    print(name)
