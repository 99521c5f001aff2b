#!/usr/bin/env python3
"""Embeds a text file into a C++ source as a std::string_view-returning function.

usage: embed.py INPUT OUTPUT NAMESPACE FUNCTION
"""
import sys

src, out, ns, fn = sys.argv[1:5]
data = open(src, 'rb').read()
body = ','.join(str(b) for b in data)
with open(out, 'w') as f:
    f.write('// Generated from %s by scripts/embed.py. Do not edit.\n' % src.split('/')[-1])
    f.write('#include <string_view>\n')
    f.write('namespace %s {\n' % ns)
    f.write('static const char kData[] = {%s%s0};\n' % (body, ',' if body else ''))
    f.write('std::string_view %s() noexcept { return std::string_view(kData, %d); }\n' % (fn, len(data)))
    f.write('}  // namespace %s\n' % ns)
