"""Writes the seeds of the `operations` fuzz target: `python3 seeds/operations.py seeds/operations`.

Each seed is a named scenario, encoded the way `arbitrary` 1.x decodes the target's
`Vec<Operation>` (taking the rest of the input: a byte whose low bit says "one more", then the
element; an enum: a little-endian u32 scaled onto its variants; fields in order). The
variant lists below follow the declaration order in `fuzz_targets/operations.rs`;
`cargo fuzz fmt operations <seed>` shows what a seed decodes to.
"""
import struct
import sys
def enum(k, n):
    x = ((2 * k + 1) << 32) // (2 * n)
    assert (x * n) >> 32 == k
    return struct.pack('<I', x)
OPS = ['CreateContact','ReadContact','UpdateContact','DeleteContact','RestoreContact','CreateTask','ReadTask','List']
WS = ['Alpha','Beta']; ROLES = ['Admin','Manager','Sales','ReadOnly']; NAMES = ['Ada','Grace','Linus','Barbara']
def who(ws, role): return enum(WS.index(ws), 2) + enum(ROLES.index(role), 4)
def op(name, ws, role, *rest):
    b = b'\x01' + enum(OPS.index(name), 8) + who(ws, role)
    for r in rest:
        if isinstance(r, str): b += enum(NAMES.index(r), 4)
        elif isinstance(r, bool): b += bytes([int(r)])
        else: b += bytes([r])
    return b
def write(path, ops):
    open(path, 'wb').write(b''.join(ops))

d = sys.argv[1]
write(d + '/regression-noop-update.bin', [
    op('CreateContact', 'Alpha', 'Sales', 'Ada'),
    op('UpdateContact', 'Alpha', 'Sales', 0, 'Ada', False),   # changes nothing: still v1
    op('UpdateContact', 'Alpha', 'Sales', 0, 'Grace', False), # v2
    op('ReadContact', 'Alpha', 'ReadOnly', 0),
])
write(d + '/regression-restore-live.bin', [
    op('CreateContact', 'Beta', 'Admin', 'Linus'),
    op('RestoreContact', 'Beta', 'Admin', 0),                 # not in the trash: not found
    op('DeleteContact', 'Beta', 'Manager', 0),
    op('RestoreContact', 'Beta', 'Manager', 0),               # admins only
    op('RestoreContact', 'Beta', 'Admin', 0),
    op('List', 'Beta', 'ReadOnly', 0),
])
write(d + '/mixed.bin', [
    op('CreateContact', 'Alpha', 'Admin', 'Ada'),
    op('CreateContact', 'Alpha', 'ReadOnly', 'Grace'),        # forbidden
    op('CreateContact', 'Beta', 'Sales', 'Barbara'),
    op('ReadContact', 'Beta', 'Manager', 0),                  # another workspace's: not found
    op('UpdateContact', 'Alpha', 'Manager', 0, 'Linus', True),# stale: conflict
    op('UpdateContact', 'Alpha', 'ReadOnly', 0, 'Linus', False), # forbidden
    op('UpdateContact', 'Alpha', 'Manager', 0, 'Linus', False),
    op('CreateTask', 'Alpha', 'Sales', 7),
    op('CreateTask', 'Alpha', 'Manager', 8),
    op('ReadTask', 'Alpha', 'ReadOnly', 0),                   # another's task: not found
    op('ReadTask', 'Alpha', 'Manager', 0),
    op('ReadTask', 'Alpha', 'Sales', 1),                      # not found
    op('DeleteContact', 'Alpha', 'Sales', 0),
    op('List', 'Alpha', 'Sales', 1),
    op('RestoreContact', 'Alpha', 'Admin', 0),
    op('List', 'Alpha', 'ReadOnly', 2),
    op('List', 'Beta', 'Admin', 6),
])
