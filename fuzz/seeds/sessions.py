"""Writes the seeds of the `sessions` fuzz target: `python3 seeds/sessions.py seeds/sessions`.

Each seed is a named scenario, encoded the way `arbitrary` 1.x decodes the target's
`Vec<Step>` (taking the rest of the input: a byte whose low bit says "one more", then the
element; an enum: a little-endian u32 scaled onto its variants; a bool: a byte's low bit;
fields in order). The variant lists below follow the declaration order in
`fuzz_targets/sessions.rs`; `cargo fuzz fmt sessions <seed>` shows what a seed decodes to.
"""
import struct
import sys
def enum(k, n):
    x = ((2 * k + 1) << 32) // (2 * n)
    assert (x * n) >> 32 == k
    return struct.pack('<I', x)
STEPS = ['Login', 'Refresh', 'Logout', 'ChangePassword', 'SetDisabled', 'UseAccess', 'Advance']
SLOTS = ['First', 'Second', 'Third', 'Fourth']
AGES = ['Current', 'OneBack', 'TwoBack']
ISSUED = ['First', 'Second', 'Third', 'Fourth', 'Fifth', 'Sixth']
MOVES = ['OneSecond', 'FiveSeconds', 'InsideGrace', 'PastGrace', 'TenMinutes',
         'PastAccessLifetime', 'TenDays', 'PastRefreshLifetime']
def step(name, *args):
    b = b'\x01' + enum(STEPS.index(name), len(STEPS))
    if name == 'Login' or name == 'SetDisabled':
        b += bytes([int(args[0])])
    elif name == 'Refresh':
        b += enum(SLOTS.index(args[0]), 4) + enum(AGES.index(args[1]), 3)
    elif name in ('Logout', 'ChangePassword'):
        b += enum(SLOTS.index(args[0]), 4)
    elif name == 'UseAccess':
        b += enum(ISSUED.index(args[0]), 6)
    elif name == 'Advance':
        b += enum(MOVES.index(args[0]), 8)
    return b
def write(path, steps):
    open(path, 'wb').write(b''.join(steps))

d = sys.argv[1]
write(d + '/reuse-after-grace.bin', [
    step('Login', True),
    step('Refresh', 'First', 'Current'),
    step('Advance', 'InsideGrace'),
    step('Refresh', 'First', 'OneBack'),        # inside the grace window: converges
    step('Advance', 'PastGrace'),
    step('Refresh', 'First', 'OneBack'),        # reuse after grace: the session is revoked
    step('Refresh', 'First', 'Current'),
    step('UseAccess', 'Second'),
])
write(d + '/disable-and-password.bin', [
    step('Login', True),
    step('Login', False),                       # wrong password
    step('Login', True),
    step('ChangePassword', 'Second'),           # ends the first session, keeps the second
    step('Refresh', 'First', 'Current'),
    step('Refresh', 'Second', 'Current'),
    step('SetDisabled', True),                  # ends every session
    step('Login', True),
    step('UseAccess', 'Third'),
    step('SetDisabled', False),
    step('Login', True),
    step('Logout', 'Third'),
])
write(d + '/expiry.bin', [
    step('Login', True),
    step('Advance', 'PastAccessLifetime'),      # the access token expired
    step('UseAccess', 'First'),
    step('Refresh', 'First', 'Current'),
    step('Advance', 'TenDays'),
    step('Refresh', 'First', 'Current'),
    step('Advance', 'PastRefreshLifetime'),     # the session expired
    step('Refresh', 'First', 'Current'),
    step('Login', True),
    step('Advance', 'TenMinutes'),
    step('UseAccess', 'Fourth'),
])
