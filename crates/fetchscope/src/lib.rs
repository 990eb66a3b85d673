//! fetchscope: the command-line tool and its renderers.
