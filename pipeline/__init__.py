"""tonghop: consolidates the party-development reports sent by Youth Union units.

Data flows one way: intake → read → identify → normalize → validate → consolidate → report → notify.
"""

__version__ = "0.1.0"
