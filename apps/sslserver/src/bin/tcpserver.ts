#!/usr/bin/env node
import { runBin } from '../_bin.js';

runBin('tcpserver');
